package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/engine/enginefake"
)

// writePart writes raw as a part of kind through the real pipeline.
func writePart(t *testing.T, dir string, p Part, raw []byte, rcpts []age.Recipient) Part {
	t.Helper()
	w, err := createPart(dir, p.File, rcpts)
	if err != nil {
		t.Fatal(err)
	}
	counts, err := checkedCopy(w, bytes.NewReader(raw), checkerFor(p, "postgresql"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.finish(&p); err != nil {
		t.Fatal(err)
	}
	p.Counts = counts
	return p
}

func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: "storage/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 1001, Gid: 1001})
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		tw.WriteHeader(&tar.Header{Name: "storage/" + n, Typeflag: tar.TypeReg, Mode: 0o640, Size: int64(len(files[n]))})
		tw.Write([]byte(files[n]))
	}
	tw.Close()
	return b.Bytes()
}

func pgDumpBytes() []byte {
	// PGDMP, archive 1.14.0, int size 4, offset size 8, format custom.
	head := []byte{'P', 'G', 'D', 'M', 'P', 1, 14, 0, 4, 8, 1}
	return append(head, bytes.Repeat([]byte("toc and data "), 1000)...)
}

func TestPartRoundTripPlainAndEncrypted(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := age.GenerateX25519Identity()
	raw := tarOf(t, map[string]string{"a.txt": "hello", "b/c.bin": strings.Repeat("x", 100000)})
	for _, enc := range []bool{false, true} {
		dir := t.TempDir()
		var rcpts []age.Recipient
		var ids []age.Identity
		if enc {
			rcpts, ids = []age.Recipient{id.Recipient()}, []age.Identity{id}
		}
		p := writePart(t, dir, Part{Name: "files/api/app/api/storage", File: "f.tar.zst", Kind: KindFiles}, raw, rcpts)
		if p.RawSize != int64(len(raw)) || p.Size == 0 || p.Size >= p.RawSize || p.Counts["files"] != 2 || p.Counts["bytes"] != 100005 {
			t.Fatalf("enc=%v part %+v", enc, p)
		}
		if enc != (p.Encryption == "age") {
			t.Fatalf("enc=%v encryption %q", enc, p.Encryption)
		}
		if st, _ := os.Stat(filepath.Join(dir, p.File)); st.Mode().Perm() != 0o600 {
			t.Fatalf("mode %v", st.Mode())
		}
		var got bytes.Buffer
		if _, err := copyPart(dir, p, "postgresql", ids, &got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), raw) {
			t.Fatal("round trip changed the stream")
		}
		if enc {
			if _, err := copyPart(dir, p, "postgresql", nil, io.Discard); !errors.Is(err, ErrNoIdentity) {
				t.Fatalf("no identity: %v", err)
			}
			if _, err := copyPart(dir, p, "postgresql", []age.Identity{other}, io.Discard); err == nil {
				t.Fatal("another identity decrypted the part")
			}
		}
		// One flipped byte: refused.
		f, _ := os.OpenFile(filepath.Join(dir, p.File), os.O_RDWR, 0)
		b := make([]byte, 1)
		f.ReadAt(b, p.Size/2)
		b[0] ^= 1
		f.WriteAt(b, p.Size/2)
		f.Close()
		if _, err := copyPart(dir, p, "postgresql", ids, io.Discard); err == nil {
			t.Fatalf("enc=%v: a corrupted part was read without an error", enc)
		}
		if c := verifyPart(dir, p, "postgresql", nil); c.OK {
			t.Fatalf("enc=%v: verify accepted a corrupted part: %+v", enc, c)
		}
	}
}

func TestCheckers(t *testing.T) {
	if _, err := checkPgDump(bytes.NewReader(pgDumpBytes())); err != nil {
		t.Fatal(err)
	}
	bad := pgDumpBytes()
	bad[10] = 3 // tar format
	for name, b := range map[string][]byte{"format": bad, "magic": []byte("PGDMX\x01\x0e\x00\x04\x08\x01"), "short": []byte("PGD")} {
		if _, err := checkPgDump(bytes.NewReader(b)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := checkMysqlDump(strings.NewReader("CREATE TABLE x;\n-- Dump completed on 2026-01-01\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := checkMysqlDump(strings.NewReader("CREATE TABLE x;\nINSERT INTO")); err == nil {
		t.Fatal("a cut mysqldump was accepted")
	}
	full := tarOf(t, map[string]string{"a": strings.Repeat("y", 5000)})
	if _, err := checkTar(bytes.NewReader(full[:2000])); err == nil {
		t.Fatal("a cut tar stream was accepted")
	}
}

func TestStripTop(t *testing.T) {
	raw := tarOf(t, map[string]string{"x/y.txt": "1", "z": "22"})
	var out bytes.Buffer
	var top *tar.Header
	if err := stripTop(&out, bytes.NewReader(raw), &top); err != nil {
		t.Fatal(err)
	}
	if top == nil || top.Uid != 1001 || top.Mode&0o777 != 0o750 {
		t.Fatalf("top %+v", top)
	}
	tr := tar.NewReader(&out)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	if strings.Join(names, ",") != "x/y.txt,z" {
		t.Fatalf("names %v", names)
	}
}

// aBundle writes a bundle directory with two parts and its manifest.
func aBundle(t *testing.T, dir string) *Manifest {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	m := &Manifest{Format: Format, Project: "p", DBType: "postgresql", DifyVersion: "1.16.0", CreatedAt: time.Now().UTC()}
	m.Parts = append(m.Parts, writePart(t, dir, Part{Name: "database", File: "database.dump.zst", Kind: KindDatabase}, pgDumpBytes(), nil))
	m.Parts = append(m.Parts, writePart(t, dir, Part{Name: "config", File: "config.tar.zst", Kind: KindConfig}, tarOf(t, map[string]string{".env": "A=1\n"}), nil))
	if err := writeManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestVerifyAndStreamRoundTrip(t *testing.T) {
	src := filepath.Join(t.TempDir(), "bundle_20260101_000000")
	aBundle(t, src)
	if v, err := Verify(src, nil); err != nil || !v.OK || len(v.Parts) != 2 {
		t.Fatalf("verify: %+v %v", v, err)
	}
	var stream bytes.Buffer
	if err := WriteStream(&stream, src); err != nil {
		t.Fatal(err)
	}
	got, err := ReadStream(bytes.NewReader(stream.Bytes()), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(got, nil); err != nil {
		t.Fatalf("the streamed copy: %v", err)
	}
	// A byte changed in transit: refused, nothing left behind.
	b := stream.Bytes()
	b[len(b)-2000] ^= 0xff
	parent := t.TempDir()
	if _, err := ReadStream(bytes.NewReader(b), parent); err == nil {
		t.Fatal("a corrupted stream was accepted")
	}
	if des, _ := os.ReadDir(parent); len(des) != 0 {
		t.Fatalf("left behind: %v", des)
	}
	// An extra file in the bundle: reported.
	os.WriteFile(filepath.Join(src, "stray"), []byte("x"), 0o600)
	if _, err := Verify(src, nil); err == nil || !strings.Contains(err.Error(), "stray") {
		t.Fatalf("stray file: %v", err)
	}
}

func TestManifestRefusesPathsOutside(t *testing.T) {
	for _, f := range []string{"../x", "a/b", ".hidden", ManifestName} {
		b := []byte(`{"format":"` + Format + `","parts":[{"name":"x","file":"` + f + `"}]}`)
		if _, err := parseManifest(b, "t"); err == nil {
			t.Errorf("file %q accepted", f)
		}
	}
}

func TestPruneKeepsNewestAndSafety(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	mk := func(name string, safetyOf string, project string) {
		p := filepath.Join(dir, name)
		os.MkdirAll(p, 0o700)
		writeManifest(p, &Manifest{Format: Format, Project: project, SafetyCopy: safetyOf != "", SafetyCopyOf: safetyOf})
	}
	mk("bundle_20260101_000000", "", "p")
	mk("bundle_20260102_000000", "", "p")
	mk("bundle_20260103_000000", "bundle_20260102_000000", "p") // protects a removed one
	mk("bundle_20260109_000000", "", "p")
	mk("bundle_20260101_000001", "", "other")
	removed, err := Prune(dir, "p", now, 3*24*time.Hour, 1, "bundle_20260109_000000")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	if strings.Join(removed, ",") != "bundle_20260101_000000,bundle_20260102_000000,bundle_20260103_000000" {
		t.Fatalf("removed %v", removed)
	}
	if _, err := os.Stat(filepath.Join(dir, "bundle_20260101_000001")); err != nil {
		t.Fatal("another project's bundle was removed")
	}
	if l, _ := Latest(dir, "p"); filepath.Base(l) != "bundle_20260109_000000" {
		t.Fatalf("latest %s", l)
	}
}

func TestCheckRefusesNewerReleaseAndOtherDB(t *testing.T) {
	m := &Manifest{DifyVersion: "99.0.0", DBType: "postgresql"}
	if err := Check(m, ""); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("newer release: %v", err)
	}
	m.DifyVersion = "1.0.0"
	if err := Check(m, "mysql"); err == nil || !strings.Contains(err.Error(), "mysql") {
		t.Fatalf("other database: %v", err)
	}
	if err := Check(m, "postgresql"); err != nil {
		t.Fatal(err)
	}
	if !NewerRelease("1.10.0", "1.9.3") || NewerRelease("1.9.3", "1.10.0") || NewerRelease("x", "1.0") {
		t.Fatal("NewerRelease")
	}
}

func TestRenameProject(t *testing.T) {
	b, err := renameProject([]byte("# c\nCOMPOSE_PROJECT_NAME=a\nSECRET_KEY=s\n"), "b")
	if err != nil || string(b) != "# c\nCOMPOSE_PROJECT_NAME=b\nSECRET_KEY=s\n" {
		t.Fatalf("%q %v", b, err)
	}
}

// fakeDeployment creates running containers of a Dify-like project in the
// fake engine.
func fakeDeployment(t *testing.T, projectDir string) *enginefake.Engine {
	t.Helper()
	e := enginefake.New()
	e.AddImage("img", enginefake.Image{ID: "sha256:img"})
	add := func(svc string, env []string, mounts ...mount.Mount) {
		res, err := e.ContainerCreate(context.Background(), client.ContainerCreateOptions{Name: "p-" + svc + "-1",
			Config:     &container.Config{Image: "img", Env: env, Labels: map[string]string{compose.LabelProject: "p", compose.LabelService: svc}},
			HostConfig: &container.HostConfig{Mounts: mounts}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.ContainerStart(context.Background(), res.ID, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	bind := func(src, dst string, ro bool) mount.Mount {
		return mount.Mount{Type: mount.TypeBind, Source: src, Target: dst, ReadOnly: ro}
	}
	vol := filepath.Join(projectDir, "volumes")
	add("db_postgres", []string{"POSTGRES_USER=u", "POSTGRES_DB=d", "POSTGRES_PASSWORD=secret"}, bind(vol+"/db/data", "/var/lib/postgresql/data", false))
	add("redis", nil, bind(vol+"/redis/data", "/data", false))
	add("api", nil, bind(vol+"/app/storage", "/app/api/storage", false))
	add("worker", nil, bind(vol+"/app/storage", "/app/api/storage", false))
	add("nginx", nil, bind(projectDir+"/nginx/nginx.conf.template", "/etc/nginx/nginx.conf.template", false),
		bind(vol+"/certbot/conf", "/etc/letsencrypt", false), bind(vol+"/certbot/conf/live", "/etc/letsencrypt/live", false),
		bind(projectDir+"/nginx/ssl", "/etc/ssl", true))
	add("weaviate", nil, mount.Mount{Type: mount.TypeVolume, Source: "p_weaviate", Target: "/var/lib/weaviate"})
	return e
}

func TestDiscoverClassifiesMounts(t *testing.T) {
	dir := "/srv/dify"
	e := fakeDeployment(t, dir)
	d, err := discover(context.Background(), e, "p", dir)
	if err != nil {
		t.Fatal(err)
	}
	if d.DB == nil || d.DB.Type != "postgresql" || d.DB.User != "u" || d.DB.Database != "d" || !slices.Equal(d.DB.Env, []string{"PGPASSWORD=secret"}) {
		t.Fatalf("db %+v", d.DB)
	}
	if d.Redis == "" {
		t.Fatal("no redis")
	}
	var got []string
	for _, f := range d.Files {
		got = append(got, f.Service+":"+f.Path+":"+f.Mount+map[bool]string{true: ":paused"}[f.Paused])
	}
	want := []string{
		"api:/app/api/storage:bind:/srv/dify/volumes/app/storage",    // once, not again for worker
		"nginx:/etc/letsencrypt:bind:/srv/dify/volumes/certbot/conf", // live/ inside it, support files in the config part
		"weaviate:/var/lib/weaviate:volume:p_weaviate:paused",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("files\n got %q\nwant %q", got, want)
	}
	if !slices.Equal(d.Services, []string{"api", "db_postgres", "nginx", "redis", "weaviate", "worker"}) {
		t.Fatalf("services %v", d.Services)
	}
}

func TestPausedCopyUnpausesWhateverHappens(t *testing.T) {
	dir := "/srv/dify"
	e := fakeDeployment(t, dir)
	d, _ := discover(context.Background(), e, "p", dir)
	var w fileTarget
	for _, f := range d.Files {
		if f.Paused {
			w = f
		}
	}
	e.SetArchive("p-weaviate-1", "/var/lib/weaviate", tarOf(t, map[string]string{"classes.db": "data"}))
	o := &Options{}
	out := t.TempDir()
	parts, err := o.pausedFiles(context.Background(), e, out, []fileTarget{w})
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 1 || parts[0].Method != MethodTarPaused || parts[0].Counts["files"] != 1 {
		t.Fatalf("parts %+v", parts)
	}
	calls := strings.Join(e.Calls(), "\n")
	if !strings.Contains(calls, "pause p-weaviate-1\ncopy-from p-weaviate-1 /var/lib/weaviate (paused)\nunpause p-weaviate-1") {
		t.Fatalf("calls:\n%s", calls)
	}
	// The copy fails (nothing to read): still unpaused.
	w2 := w
	w2.Path = "/missing"
	if _, err := o.pausedFiles(context.Background(), e, t.TempDir(), []fileTarget{w2}); err == nil {
		t.Fatal("a failed copy succeeded")
	}
	if c := e.Container("p-weaviate-1"); c.Status != container.StateRunning {
		t.Fatalf("weaviate left %s after a failed copy", c.Status)
	}
}

// A bundle that fails is not kept and prunes nothing.
func TestFailedBundleKeepsNothingAndPrunesNothing(t *testing.T) {
	projectDir := t.TempDir()
	e := fakeDeployment(t, projectDir)
	bdir := filepath.Join(t.TempDir(), "all")
	old := filepath.Join(bdir, "bundle_20200101_000000")
	os.MkdirAll(old, 0o700)
	writeManifest(old, &Manifest{Format: Format, Project: "p"})
	_, err := Run(context.Background(), e, Options{Project: "p", ProjectDir: projectDir, Dir: bdir, Retention: 0, KeepMin: 0,
		Free: func(string) (int64, error) { return 1 << 40, nil }})
	if err == nil {
		t.Fatal("a bundle whose database dump cannot run succeeded")
	}
	des, _ := os.ReadDir(bdir)
	var names []string
	for _, de := range des {
		if !strings.HasPrefix(de.Name(), ".difyctl-backup-") { // the lock file
			names = append(names, de.Name())
		}
	}
	if !slices.Equal(names, []string{"bundle_20200101_000000"}) {
		t.Fatalf("after a failed bundle the directory holds %v", names)
	}
}

func TestSpaceCheckRefusesBeforeWriting(t *testing.T) {
	projectDir := t.TempDir()
	e := fakeDeployment(t, projectDir)
	bdir := filepath.Join(t.TempDir(), "all")
	o := Options{Project: "p", ProjectDir: projectDir, Dir: bdir, Free: func(string) (int64, error) { return -1, nil }}
	_, err := Take(context.Background(), e, o)
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("err %v", err)
	}
	if des, _ := os.ReadDir(bdir); len(des) != 0 {
		t.Fatalf("written: %v", des)
	}
}

func TestProjectTarLeavesOutDataAndBackups(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{".env", "docker-compose.override.yaml", "nginx/conf.d/default.conf.template", "volumes/app/storage/x", "backups/redis/r.rdb", ".difyctl-journal-p.json"} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755)
		os.WriteFile(filepath.Join(dir, f), []byte(f), 0o600)
	}
	var b bytes.Buffer
	if err := writeProjectTar(&b, dir, filepath.Join(dir, "backups", "all")); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&b)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if h.Typeflag == tar.TypeReg {
			names = append(names, h.Name)
		}
	}
	slices.Sort(names)
	if strings.Join(names, ",") != ".env,docker-compose.override.yaml,nginx/conf.d/default.conf.template" {
		t.Fatalf("names %v", names)
	}
}

// TestRunTasksReadsEveryPartBack: each part is read back as soon as its
// task ends (a stored file that lost a byte fails the bundle, naming the
// part), and every part carries its wall time.
func TestRunTasksReadsEveryPartBack(t *testing.T) {
	dir := t.TempDir()
	written := func(name string) Part {
		return writePart(t, dir, Part{Name: name, File: name + ".tar.zst", Kind: KindFiles}, tarOf(t, map[string]string{name: "x"}), nil)
	}
	done := func(p Part) task { return func(context.Context) ([]Part, error) { return []Part{p}, nil } }
	ps, err := runTasks(context.Background(), []task{done(written("one")), done(written("two"))}, 2, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if _, err := time.ParseDuration(p.Took); err != nil {
			t.Errorf("part %s: took %q: %v", p.Name, p.Took, err)
		}
	}
	lost := written("lost")
	f, err := os.OpenFile(filepath.Join(dir, lost.File), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0}) // the disk holds another byte than was written
	f.Close()
	_, err = runTasks(context.Background(), []task{done(written("three")), done(lost)}, 2, dir)
	if err == nil || !strings.Contains(err.Error(), "part lost") || !strings.Contains(err.Error(), "read back") {
		t.Fatalf("a part that lost data: %v", err)
	}
}

// TestFullDiskErrorSaysWhatIsNeeded: a full disk while parts stream says
// how much the bundle needs and how much was free; other errors pass as
// they are.
func TestFullDiskErrorSaysWhatIsNeeded(t *testing.T) {
	est := estimate{need: 300 << 20, avail: 200 << 20, dir: "/b", known: true}
	err := est.explain(fmt.Errorf("part database: %w", diskErr(&os.PathError{Op: "write", Path: "/b/x", Err: syscall.ENOSPC})))
	if !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "part database") ||
		!strings.Contains(err.Error(), "needs about 300.0 MiB in /b") || !strings.Contains(err.Error(), "200.0 MiB was free") {
		t.Fatalf("%v", err)
	}
	other := errors.New("exec failed")
	if est.explain(other) != other {
		t.Fatal("explain changed an error that is not a full disk")
	}
	if (estimate{}).explain(err) != err {
		t.Fatal("explain without an estimate changed the error")
	}
}

func TestTimingWords(t *testing.T) {
	var tm timings
	tm.since("discover", time.Now().Add(-1500*time.Millisecond))
	ts := tm.list()
	if len(ts) != 1 || ts[0].Seconds < 1.5 || ts[0].Seconds > 60 {
		t.Fatalf("%+v", ts)
	}
	if w := TimingWords([]Timing{{Step: "a", Took: "1s"}, {Step: "b", Took: "2ms"}}); w != "a 1s, b 2ms" {
		t.Fatalf("%q", w)
	}
	var none *timings
	none.since("x", time.Now()) // a restore without timings (settle) records nothing
	if none.list() != nil {
		t.Fatal("nil timings listed something")
	}
}
