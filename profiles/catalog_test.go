package profiles

import (
	"strings"
	"testing"
)

func TestCatalogueCoversUpstream(t *testing.T) {
	for _, n := range []string{"postgresql", "mysql", "oceanbase", "weaviate", "qdrant", "pgvector", "chroma", "milvus", "opensearch", "elasticsearch", "certbot", "unstructured", "collaboration"} {
		if _, ok := Get(n); !ok {
			t.Errorf("profile %s missing", n)
		}
	}
	m, _ := Get("milvus")
	if strings.Join(m.Services, ",") != "etcd,milvus-standalone,minio" {
		t.Errorf("milvus services from the template: %v", m.Services)
	}
	pg, _ := Get("postgresql")
	if strings.Join(pg.Services, ",") != "db_postgres" || pg.Vars["DB_HOST"] != "db_postgres" {
		t.Errorf("postgresql: %+v", pg)
	}
}

func TestSelect(t *testing.T) {
	s, err := Select(nil, false)
	if err != nil || s.Database != "postgresql" || s.Vector != "weaviate" || strings.Join(s.Extras, ",") != "collaboration" {
		t.Fatalf("defaults: %+v %v", s, err)
	}
	s, err = Select([]string{"mysql", "qdrant,certbot"}, true)
	if err != nil || s.Database != "mysql" || s.Vector != "qdrant" || strings.Join(s.Extras, ",") != "certbot" {
		t.Fatalf("got %+v %v", s, err)
	}
	if v := s.Vars(); v["COMPOSE_PROFILES"] != "qdrant,mysql,certbot" || v["DB_TYPE"] != "mysql" || v["VECTOR_STORE"] != "qdrant" || v["QDRANT_URL"] != "http://qdrant:6333" {
		t.Fatalf("vars: %v", v)
	}
	for _, bad := range [][]string{{"nosuch"}, {"mysql", "postgresql"}, {"qdrant", "weaviate"}} {
		_, err := Select(bad, false)
		if err == nil || !(strings.Contains(err.Error(), "choose one of") || strings.Contains(err.Error(), "vector stores: weaviate")) {
			t.Errorf("%v: want an error listing the choices, got %v", bad, err)
		}
	}
}

func TestFromEnv(t *testing.T) {
	s, err := FromEnv(map[string]string{"DB_TYPE": "mysql", "VECTOR_STORE": "milvus", "COMPOSE_PROFILES": "milvus,mysql,unstructured"})
	if err != nil || s.Database != "mysql" || s.Vector != "milvus" || strings.Join(s.Extras, ",") != "unstructured" {
		t.Fatalf("got %+v %v", s, err)
	}
}
