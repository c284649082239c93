package testenv

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Registry is a small in-memory implementation of the registry HTTP API v2
// (the part the engine uses to push and pull: blobs, chunked uploads,
// manifests by tag or digest), served on loopback, which the engine treats
// as an insecure registry. It lets tests push an image through the engine
// and have difyctl pull it, on a machine with no registry.
type Registry struct {
	// Host is host:port, for image references (Host + "/name:tag").
	Host string

	mu        sync.Mutex
	user      string // with pass: every request needs these (HTTP basic auth)
	pass      string
	blobs     map[string][]byte // digest -> content
	manifests map[string]stored // name + "@" + tag or digest
	uploads   map[string]*bytes.Buffer
	blobGets  int
}

type stored struct {
	contentType string
	body        []byte
}

// StartRegistry serves a fresh Registry until the test ends.
func StartRegistry(t testing.TB) *Registry {
	t.Helper()
	r := &Registry{blobs: map[string][]byte{}, manifests: map[string]stored{}, uploads: map[string]*bytes.Buffer{}}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	r.Host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

// RequireBasicAuth makes every request need user and pass.
func (r *Registry) RequireBasicAuth(user, pass string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.user, r.pass = user, pass
}

// BlobGets is how many blob downloads the registry served.
func (r *Registry) BlobGets() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.blobGets
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	r.mu.Lock()
	wantUser, wantPass := r.user, r.pass
	r.mu.Unlock()
	if wantUser != "" {
		if u, p, ok := req.BasicAuth(); !ok || u != wantUser || p != wantPass {
			w.Header().Set("WWW-Authenticate", `Basic realm="difyctl-test"`)
			writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
			return
		}
	}
	path := req.URL.Path
	if path == "/v2/" || path == "/v2" {
		return
	}
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		http.NotFound(w, req)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case strings.Contains(rest, "/blobs/uploads"):
		name, id, _ := strings.Cut(rest, "/blobs/uploads")
		r.upload(w, req, name, strings.Trim(id, "/"))
	case strings.Contains(rest, "/blobs/"):
		_, digest, _ := strings.Cut(rest, "/blobs/")
		b, ok := r.blobs[digest]
		if !ok || (req.Method != http.MethodGet && req.Method != http.MethodHead) {
			writeRegistryError(w, http.StatusNotFound, "BLOB_UNKNOWN", digest)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Docker-Content-Digest", digest)
		if req.Method == http.MethodGet {
			r.blobGets++
			w.Write(b)
		}
	case strings.Contains(rest, "/manifests/"):
		name, ref, _ := strings.Cut(rest, "/manifests/")
		r.manifest(w, req, name, ref)
	default:
		http.NotFound(w, req)
	}
}

func (r *Registry) upload(w http.ResponseWriter, req *http.Request, name, id string) {
	switch req.Method {
	case http.MethodPost: // start an upload (a cross-repository mount is answered with a fresh upload)
		b := make([]byte, 8)
		rand.Read(b)
		id = hex.EncodeToString(b)
		r.uploads[id] = &bytes.Buffer{}
		w.Header().Set("Location", "/v2/"+name+"/blobs/uploads/"+id)
		w.Header().Set("Docker-Upload-UUID", id)
		w.Header().Set("Range", "0-0")
		w.WriteHeader(http.StatusAccepted)
	case http.MethodPatch, http.MethodPut:
		buf, ok := r.uploads[id]
		if !ok {
			writeRegistryError(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", id)
			return
		}
		if _, err := io.Copy(buf, req.Body); err != nil {
			writeRegistryError(w, http.StatusBadRequest, "BLOB_UPLOAD_INVALID", err.Error())
			return
		}
		if req.Method == http.MethodPatch {
			w.Header().Set("Location", "/v2/"+name+"/blobs/uploads/"+id)
			w.Header().Set("Docker-Upload-UUID", id)
			w.Header().Set("Range", fmt.Sprintf("0-%d", max(buf.Len()-1, 0)))
			w.WriteHeader(http.StatusAccepted)
			return
		}
		want := req.URL.Query().Get("digest")
		if got := digestOf(buf.Bytes()); got != want {
			writeRegistryError(w, http.StatusBadRequest, "DIGEST_INVALID", fmt.Sprintf("got %s, want %s", got, want))
			return
		}
		r.blobs[want] = bytes.Clone(buf.Bytes())
		delete(r.uploads, id)
		w.Header().Set("Location", "/v2/"+name+"/blobs/"+want)
		w.Header().Set("Docker-Content-Digest", want)
		w.WriteHeader(http.StatusCreated)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func (r *Registry) manifest(w http.ResponseWriter, req *http.Request, name, ref string) {
	switch req.Method {
	case http.MethodPut:
		body, err := io.ReadAll(req.Body)
		if err != nil {
			writeRegistryError(w, http.StatusBadRequest, "MANIFEST_INVALID", err.Error())
			return
		}
		m := stored{contentType: req.Header.Get("Content-Type"), body: body}
		digest := digestOf(body)
		r.manifests[name+"@"+ref] = m
		r.manifests[name+"@"+digest] = m
		w.Header().Set("Location", "/v2/"+name+"/manifests/"+digest)
		w.Header().Set("Docker-Content-Digest", digest)
		w.WriteHeader(http.StatusCreated)
	case http.MethodGet, http.MethodHead:
		m, ok := r.manifests[name+"@"+ref]
		if !ok {
			writeRegistryError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", name+":"+ref)
			return
		}
		w.Header().Set("Content-Type", m.contentType)
		w.Header().Set("Content-Length", fmt.Sprint(len(m.body)))
		w.Header().Set("Docker-Content-Digest", digestOf(m.body))
		if req.Method == http.MethodGet {
			w.Write(m.body)
		}
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func writeRegistryError(w http.ResponseWriter, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, detail)
}
