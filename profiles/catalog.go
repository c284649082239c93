// Package profiles is the catalogue of Dify's compose profiles: which metadata
// database and which vector store a deployment runs, plus optional extras.
//
// Which services a profile starts is read from the embedded compose template
// (its `profiles:` keys), never listed here; this file holds what the
// template cannot say: a profile's kind, description, and the variables that
// choosing it sets.
package profiles

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"go.yaml.in/yaml/v4"

	"github.com/difyctl/difyctl/templates"
)

// Kind of profile.
type Kind string

// Kinds.
const (
	Database Kind = "database"
	Vector   Kind = "vector"
	Extra    Kind = "extra"
)

// Profile is one entry of the catalogue.
type Profile struct {
	Name        string            `json:"name"`
	Kind        Kind              `json:"kind"`
	Description string            `json:"description"`
	Resources   string            `json:"resources,omitempty"` // upstream's note on what it needs
	Vars        map[string]string `json:"vars"`                // variables choosing it sets
	Services    []string          `json:"services"`            // from the compose template
	Default     bool              `json:"default,omitempty"`   // started unless deselected (extras)
}

// DefaultDatabase and DefaultVector are used when no profile of the kind is given.
const (
	DefaultDatabase = "postgresql"
	DefaultVector   = "weaviate"
)

func db(name, desc, host, port string) *Profile {
	return &Profile{Name: name, Kind: Database, Description: desc, Vars: map[string]string{"DB_TYPE": name, "DB_HOST": host, "DB_PORT": port}}
}

func vec(name, desc, resources string, vars ...string) *Profile {
	m := map[string]string{"VECTOR_STORE": name}
	for i := 0; i+1 < len(vars); i += 2 {
		m[vars[i]] = vars[i+1]
	}
	return &Profile{Name: name, Kind: Vector, Description: desc, Resources: resources, Vars: m}
}

var catalog = []*Profile{
	db("postgresql", "PostgreSQL 15: upstream's default metadata database", "db_postgres", "5432"),
	db("mysql", "MySQL 8.0 as the metadata database", "db_mysql", "3306"),

	vec("weaviate", "Weaviate 1.27: upstream's default vector store", "", "WEAVIATE_ENDPOINT", "http://weaviate:8080", "WEAVIATE_GRPC_ENDPOINT", "grpc://weaviate:50051"),
	vec("qdrant", "Qdrant: Rust vector search engine", "", "QDRANT_URL", "http://qdrant:6333"),
	vec("pgvector", "pgvector: vectors in a second PostgreSQL 16", "", "PGVECTOR_HOST", "pgvector", "PGVECTOR_PORT", "5432"),
	vec("pgvecto-rs", "pgvecto.rs: vectors in PostgreSQL 16 (Rust extension)", "", "PGVECTO_RS_HOST", "pgvecto-rs", "PGVECTO_RS_PORT", "5432"),
	vec("chroma", "Chroma 0.5: embeddings database", "", "CHROMA_HOST", "chroma", "CHROMA_PORT", "8000"),
	vec("milvus", "Milvus 2.6 standalone with etcd and MinIO", "three services; Milvus asks for 8 GiB of memory", "MILVUS_URI", "http://milvus-standalone:19530"),
	vec("opensearch", "OpenSearch with OpenSearch Dashboards", "JVM heap 512m-1g (OPENSEARCH_JAVA_OPTS_*); needs vm.max_map_count >= 262144", "OPENSEARCH_HOST", "opensearch", "OPENSEARCH_PORT", "9200"),
	vec("elasticsearch", "Elasticsearch 8.14 with Kibana", "2 GiB memory limit (ELASTICSEARCH mem_limit); needs vm.max_map_count >= 262144", "ELASTICSEARCH_HOST", "elasticsearch", "ELASTICSEARCH_PORT", "9200"),
	vec("oceanbase", "OceanBase CE 4.3: distributed SQL with vector search", "OCEANBASE_MEMORY_LIMIT, 6G by default", "OCEANBASE_VECTOR_HOST", "oceanbase", "OCEANBASE_VECTOR_PORT", "2881"),
	vec("seekdb", "OceanBase seekdb: lightweight OceanBase for AI search", "SEEKDB_MEMORY_LIMIT, 2G by default", "OCEANBASE_VECTOR_HOST", "seekdb", "OCEANBASE_VECTOR_PORT", "2881", "OCEANBASE_VECTOR_USER", "root"),
	vec("vastbase", "Vastbase with its vector extension", "", "VASTBASE_HOST", "vastbase", "VASTBASE_PORT", "5432"),
	vec("opengauss", "openGauss 7 with vector support", "", "OPENGAUSS_HOST", "opengauss", "OPENGAUSS_PORT", "6600"),
	vec("myscale", "MyScaleDB: ClickHouse-based vector SQL", "", "MYSCALE_HOST", "myscale", "MYSCALE_PORT", "8123"),
	vec("matrixone", "MatrixOne: hyperconverged SQL with vectors", "", "MATRIXONE_HOST", "matrixone", "MATRIXONE_PORT", "6001"),
	vec("iris", "InterSystems IRIS Community with vector search", "", "IRIS_HOST", "iris", "IRIS_SUPER_SERVER_PORT", "1972"),
	vec("oracle", "Oracle Database Free 23ai", "", "ORACLE_DSN", "oracle:1521/FREEPDB1"),

	{Name: "collaboration", Kind: Extra, Default: true, Description: "websocket API for real-time workflow collaboration (upstream enables it by default)", Vars: map[string]string{"ENABLE_COLLABORATION_MODE": "true"}},
	{Name: "certbot", Kind: Extra, Description: "Let's Encrypt certificates for nginx (CERTBOT_EMAIL, CERTBOT_DOMAIN)", Vars: map[string]string{"NGINX_ENABLE_CERTBOT_CHALLENGE": "true"}},
	{Name: "unstructured", Kind: Extra, Description: "Unstructured API for document extraction (ETL_TYPE=Unstructured)", Vars: map[string]string{"ETL_TYPE": "Unstructured", "UNSTRUCTURED_API_URL": "http://unstructured:8000/general/v0/general"}},
}

// byName indexes the catalogue and fills each profile's services from the
// compose template, on first use rather than at start-up.
var byName = sync.OnceValue(func() map[string]*Profile {
	services := servicesByProfile(templates.Compose())
	m := map[string]*Profile{}
	for _, p := range catalog {
		p.Services = services[p.Name]
		if len(p.Services) == 0 {
			panic("profile " + p.Name + " starts no service of the compose template")
		}
		m[p.Name] = p
	}
	for name := range services {
		if m[name] == nil && name != "elasticsearch-ja" {
			panic("compose template profile " + name + " is missing from the catalogue")
		}
	}
	return m
})

// servicesByProfile reads the compose file's services and their profiles.
func servicesByProfile(compose []byte) map[string][]string {
	var doc struct {
		Services map[string]struct {
			Profiles []string `yaml:"profiles"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(compose, &doc); err != nil {
		panic("embedded compose template: " + err.Error())
	}
	out := map[string][]string{}
	for name, s := range doc.Services {
		for _, p := range s.Profiles {
			out[p] = append(out[p], name)
		}
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

// All returns the catalogue in display order: databases, vector stores, extras.
func All() []*Profile {
	byName() // fills the services
	return catalog
}

// Get returns the named profile.
func Get(name string) (*Profile, bool) {
	p, ok := byName()[name]
	return p, ok
}

// Names returns the names of the profiles of kind k.
func Names(k Kind) []string {
	var out []string
	for _, p := range All() {
		if p.Kind == k {
			out = append(out, p.Name)
		}
	}
	return out
}

// Selection is a validated choice of profiles.
type Selection struct {
	Database string   `json:"database"`
	Vector   string   `json:"vector"`
	Extras   []string `json:"extras"`
}

// Select validates the names given with --profile: unknown names and two of
// one kind are errors that list the valid choices. A missing database or
// vector store gets the default; extras enabled by default are added unless
// noDefaultExtras.
func Select(names []string, noDefaultExtras bool) (Selection, error) {
	var s Selection
	seen := map[string]bool{}
	for _, raw := range names {
		for _, n := range strings.Split(raw, ",") {
			n = strings.TrimSpace(n)
			if n == "" || seen[n] {
				continue
			}
			seen[n] = true
			p, ok := byName()[n]
			if !ok {
				return s, fmt.Errorf("unknown profile %q; databases: %s; vector stores: %s; extras: %s",
					n, strings.Join(Names(Database), ", "), strings.Join(Names(Vector), ", "), strings.Join(Names(Extra), ", "))
			}
			switch p.Kind {
			case Database:
				if s.Database != "" {
					return s, fmt.Errorf("two databases chosen (%s and %s); choose one of: %s", s.Database, n, strings.Join(Names(Database), ", "))
				}
				s.Database = n
			case Vector:
				if s.Vector != "" {
					return s, fmt.Errorf("two vector stores chosen (%s and %s); choose one of: %s", s.Vector, n, strings.Join(Names(Vector), ", "))
				}
				s.Vector = n
			default:
				s.Extras = append(s.Extras, n)
			}
		}
	}
	if s.Database == "" {
		s.Database = DefaultDatabase
	}
	if s.Vector == "" {
		s.Vector = DefaultVector
	}
	if !noDefaultExtras {
		for _, p := range All() {
			if p.Kind == Extra && p.Default && !seen[p.Name] {
				s.Extras = append(s.Extras, p.Name)
			}
		}
	}
	return s, nil
}

// Names returns the selected profile names: vector store, database, extras,
// the order upstream's COMPOSE_PROFILES uses.
func (s Selection) Names() []string {
	return append([]string{s.Vector, s.Database}, s.Extras...)
}

// Active reports whether profile name is selected.
func (s Selection) Active(name string) bool {
	for _, n := range s.Names() {
		if n == name {
			return true
		}
	}
	return false
}

// Vars returns every variable the selection implies.
func (s Selection) Vars() map[string]string {
	out := map[string]string{"COMPOSE_PROFILES": strings.Join(s.Names(), ",")}
	for _, n := range s.Names() {
		for k, v := range byName()[n].Vars {
			out[k] = v
		}
	}
	return out
}

// FromEnv reconstructs the selection a .env describes: DB_TYPE, VECTOR_STORE
// and the extras named in COMPOSE_PROFILES.
func FromEnv(env map[string]string) (Selection, error) {
	names := []string{env["DB_TYPE"], env["VECTOR_STORE"]}
	for _, n := range strings.Split(env["COMPOSE_PROFILES"], ",") {
		if p, ok := byName()[strings.TrimSpace(n)]; ok && p.Kind == Extra {
			names = append(names, p.Name)
		}
	}
	return Select(names, true)
}
