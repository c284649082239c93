package e2e

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/backup/bundle"
	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/journal"
	"github.com/difyctl/difyctl/internal/testenv"
)

// vectorOverride adds the vector store (weaviate, Dify's default) to
// testenv.BundleOverride's services, played by busybox: its data are the files of
// ./volumes/weaviate, which a bundle copies with the container paused.
const vectorOverride = `  weaviate:
    image: difyctl-test/busybox
    entrypoint: ["sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait"]
    command: !reset []
    healthcheck:
      disable: true
`

var killAllServices = append(append([]string{}, bundleServices...), "weaviate")

// deploymentState is what each part of the deployment holds, item by item:
// database (each table's row count and checksum, the large objects),
// storage and plugins (each file's SHA-256), redis (its keys and values),
// vector (each file's SHA-256).
type deploymentState map[string]map[string]string

var deploymentParts = []string{"database", "storage", "plugins", "redis", "vector"}

func stateOf(t *testing.T, cli *client.Client, p bundleProject) deploymentState {
	t.Helper()
	s := snapshot(t, cli, p)
	d := deploymentState{"database": {"largeObjects": s.LOs}, "storage": {}, "plugins": {}, "redis": {"keys": s.Redis}, "vector": {}}
	for tbl, v := range s.Tables {
		d["database"][tbl] = v
	}
	for f, sum := range s.Files {
		if rest, ok := strings.CutPrefix(f, "app/storage/"); ok {
			d["storage"][rest] = sum
		} else if rest, ok := strings.CutPrefix(f, "plugin_daemon/"); ok {
			d["plugins"][rest] = sum
		}
	}
	root := filepath.Join(p.dir, "volumes", "weaviate")
	err := filepath.WalkDir(root, func(path string, de fs.DirEntry, err error) error {
		if err != nil || !de.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		sum := sha256.Sum256(b)
		d["vector"][rel] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func samePart(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// partDiff says how got differs from want, item by item.
func partDiff(got, want map[string]string) string {
	var d []string
	for k, v := range want {
		if w, ok := got[k]; !ok {
			d = append(d, "missing "+k)
		} else if w != v {
			d = append(d, "changed "+k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			d = append(d, "extra "+k)
		}
	}
	sort.Strings(d)
	if len(d) > 8 {
		d = append(d[:8], fmt.Sprintf("... %d more", len(d)-8))
	}
	return strings.Join(d, ", ")
}

// toStateB changes every part: rows added, deleted and changed, a large
// object added; storage files removed, changed and added; a plugin added;
// Redis keys removed and added; vector files changed and added.
func toStateB(t *testing.T, cli *client.Client, p bundleProject) {
	t.Helper()
	psql(t, cli, p, `INSERT INTO accounts (email) SELECT 'b' || g || '@example.com' FROM generate_series(1, 50) g;
DELETE FROM messages WHERE id % 7 = 0;
UPDATE messages SET body = 'changed in B' WHERE id % 11 = 0;
INSERT INTO uploads SELECT 100, lo_from_bytea(0, 'state B'), 'B'::bytea;`)
	up := filepath.Join(p.dir, "volumes", "app", "storage", "upload_files", "tenant-1")
	for _, f := range []string{"file-000.bin", "file-005.bin"} {
		if err := os.Remove(filepath.Join(up, f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(up, "file-001.bin"), []byte("changed in B"), 0o640); err != nil {
		t.Fatal(err)
	}
	writeTree(t, filepath.Join(p.dir, "volumes", "app", "storage", "upload_files", "tenant-2"), 6)
	writeTree(t, filepath.Join(p.dir, "volumes", "plugin_daemon", "cwd", "langgenius", "b-plugin"), 2)
	redisEval(t, cli, p, "for i=1,200 do redis.call('DEL', 'k'..i) end for i=1,300 do redis.call('SET', 'b'..i, 'B'..i) end return 1")
	vec := filepath.Join(p.dir, "volumes", "weaviate")
	if err := os.WriteFile(filepath.Join(vec, "classes", "file-002.bin"), []byte("changed in B"), 0o640); err != nil {
		t.Fatal(err)
	}
	writeTree(t, filepath.Join(vec, "b-class"), 3)
}

// progressLine is one line `restore all` printed on stderr and when.
type progressLine struct {
	text string
	at   time.Duration
}

// lineKey identifies a progress line across runs: its text up to the first
// digit (counts, sizes, timestamps and project names differ between runs).
func lineKey(s string) string {
	if i := strings.IndexAny(s, "0123456789"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// allKillPoint is where the test kills `restore all`: delay after the
// occ-th line whose key is key.
type allKillPoint struct {
	key   string
	occ   int
	delay time.Duration
	desc  string
}

// restoreAllRun runs `restore all bundle` and, with kp, SIGKILLs it delay
// after the line kp names. It returns the lines, whether the kill hit a
// running process, and (without kp) the time the run took.
func restoreAllRun(t *testing.T, p bundleProject, file string, kp *allKillPoint) ([]progressLine, bool, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), restoreLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.Difyctl(t), p.args("restore", "all", file, "--yes")...)
	cmd.WaitDelay = 10 * time.Second
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout strings.Builder
	cmd.Stdout = &stdout
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []progressLine
	var all strings.Builder
	seen := map[string]int{}
	killed := false
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		l := sc.Text()
		all.WriteString(l + "\n")
		lines = append(lines, progressLine{l, time.Since(start)})
		k := lineKey(l)
		seen[k]++
		if kp != nil && !killed && k == kp.key && seen[k] == kp.occ {
			time.Sleep(kp.delay)
			killed = cmd.Process.Kill() == nil
			if !killed {
				break
			}
		}
	}
	io.Copy(io.Discard, stderr)
	err = cmd.Wait()
	took := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("restore all %s did not finish within %s (killed by the test):\n%s", file, restoreLimit, all.String())
	}
	if kp == nil && err != nil {
		t.Fatalf("restore all %s: %v\n%s\n%s", file, err, stdout.String(), all.String())
	}
	if kp != nil && seen[kp.key] < kp.occ {
		t.Fatalf("restore all %s never printed %q (occurrence %d):\n%s", file, kp.key, kp.occ, all.String())
	}
	if killed && err == nil {
		killed = false // it had exited before the signal landed
	}
	return lines, killed, took
}

// allKillPoints are the kill points found from a whole restore's progress
// lines. Every one is a candidate: right after each line (the step it
// names just asked for, the one before it done) and in the middle of each
// gap of 20 ms or more to the next line (or to the end of the run).
//
// Each kill costs a rollback, as long as a restore, so by default the test
// kills in one window of each kind of work a kill can interrupt:
//   - right after "verifying" (before the journal: nothing changed);
//   - in the middle of the vector store's paused copy (the safety bundle);
//   - in the middle of the database's load (the application services
//     stopped, pg_restore in flight);
//   - right after the first file tree is put back (the next tree's upload
//     and swap in flight, its helper container running);
//   - right after Redis's "replacing" (the Redis restore's own journal and
//     helper container in flight);
//   - in the middle of the final start of every service.
//
// DIFYCTL_E2E_RESTORE_ALL_KILL=every kills at every candidate;
// DIFYCTL_E2E_RESTORE_ALL_KILL=<regexp> at those whose description (as
// logged) matches.
func allKillPoints(t *testing.T, lines []progressLine, took time.Duration) []allKillPoint {
	t.Helper()
	type candidate struct {
		allKillPoint
		text           string
		mid, afterStop bool
	}
	stop := -1
	for i, l := range lines {
		if strings.HasPrefix(l.text, "stopping ") && strings.Contains(l.text, "the data services keep running") {
			stop = i
			break
		}
	}
	if stop < 0 {
		t.Fatalf("the whole restore never said it stopped the application services")
	}
	var cands []candidate
	occ := map[string]int{}
	for i, l := range lines {
		k := lineKey(l.text)
		occ[k]++
		c := candidate{allKillPoint{key: k, occ: occ[k], desc: fmt.Sprintf("right after %q", l.text)}, l.text, false, i >= stop}
		cands = append(cands, c)
		next := took
		if i+1 < len(lines) {
			next = lines[i+1].at
		}
		if gap := next - l.at; gap >= 20*time.Millisecond {
			c.mid, c.delay = true, gap/2
			c.desc = fmt.Sprintf("%s after %q (the middle of the %s to the next line)", c.delay.Round(time.Millisecond), l.text, gap.Round(time.Millisecond))
			cands = append(cands, c)
		}
	}
	var pts []allKillPoint
	switch sel := os.Getenv("DIFYCTL_E2E_RESTORE_ALL_KILL"); sel {
	case "every":
		for _, c := range cands {
			pts = append(pts, c.allKillPoint)
		}
	case "":
		rules := []struct {
			prefix         string
			mid, afterStop bool
			last           bool
		}{
			{"verifying ", false, false, false},
			{"pausing ", true, false, false},
			{"database: loading ", true, true, false},
			{"files/", false, true, false},
			{"replacing ", false, true, false},
			{"starting ", true, true, true},
		}
		for _, r := range rules {
			var found, plain *candidate
			for i := range cands {
				c := &cands[i]
				if !strings.HasPrefix(c.text, r.prefix) || c.afterStop != r.afterStop {
					continue
				}
				if c.mid == r.mid && (found == nil || r.last) {
					found = c
				}
				if !c.mid && (plain == nil || r.last) {
					plain = c
				}
			}
			if found == nil {
				found = plain // no gap worth the name after it: right after the line
			}
			if found == nil {
				t.Fatalf("the whole restore printed no line starting with %q", r.prefix)
			}
			pts = append(pts, found.allKillPoint)
		}
	default:
		re, err := regexp.Compile(sel)
		if err != nil {
			t.Fatalf("DIFYCTL_E2E_RESTORE_ALL_KILL=%q: %v", sel, err)
		}
		for _, c := range cands {
			if re.MatchString(c.desc) {
				pts = append(pts, c.allKillPoint)
			}
		}
	}
	return pts
}

// A `restore all` over a deployment SIGKILLed at every step and in the
// windows between them, then one `difyctl up`: every part (the database,
// the storage files, the plugins, Redis, the vector store's files) holds
// exactly its data before the restore or exactly the bundle's, as up says
// it settled the restore, naming the safety bundle; no journal and no
// helper container is left, and every service runs (none left paused).
func TestRestoreAllKilledAtEveryStep(t *testing.T) {
	t.Parallel() // own project, backup directory and data; no stand-in names: the package stays within its time
	cli := testenv.Fixtures(t)
	began := time.Now()
	p := upBundleProject(t, cli)
	t.Cleanup(func() { removeBundleHelpers(cli, p.name) })
	f, err := os.OpenFile(filepath.Join(p.dir, "docker-compose.override.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(vectorOverride); err != nil {
		t.Fatal(err)
	}
	f.Close()
	up := func() result {
		return runWithin(t, 6*time.Minute, p.args(append([]string{"up", "--progress", "plain", "--wait-timeout", "300s"}, killAllServices...)...)...)
	}
	if r := up(); r.code != 0 {
		t.Fatalf("up with the vector store: exit %d\n%s", r.code, r.stderr)
	}
	writeTree(t, filepath.Join(p.dir, "volumes", "weaviate", "classes"), 8)

	type dataSet struct {
		name, bundle string
		state        deploymentState
	}
	sets := [2]*dataSet{{name: "A"}, {name: "B"}}
	sets[0].state = stateOf(t, cli, p)
	sets[0].bundle = backupAll(t, p).Path
	toStateB(t, cli, p)
	sets[1].state = stateOf(t, cli, p)
	sets[1].bundle = backupAll(t, p).Path
	for _, part := range deploymentParts {
		if samePart(sets[0].state[part], sets[1].state[part]) {
			t.Fatalf("state B does not change the part %s", part)
		}
	}
	t.Logf("deployment up with states A and B and their bundles in %s", time.Since(began).Round(time.Second))

	// A whole restore first: it must work, and its progress lines are the
	// kill points.
	lines, _, took := restoreAllRun(t, p, sets[0].bundle, nil)
	for _, l := range lines {
		t.Logf("  %8s  %s", l.at.Round(time.Millisecond), l.text)
	}
	cur := 0
	checkWhole(t, cli, p, "after the whole restore", sets[cur].state)
	pts := allKillPoints(t, lines, took)
	t.Logf("a whole restore took %s and printed %d lines; %d kill points", took.Round(time.Millisecond), len(lines), len(pts))

	for n, kp := range pts {
		pointStart := time.Now()
		old, want := sets[cur], sets[1-cur]
		_, killed, _ := restoreAllRun(t, p, want.bundle, &kp)
		point := fmt.Sprintf("kill %d/%d (restoring %s over %s) %s", n+1, len(pts), want.name, old.name, kp.desc)
		j, err := journal.Load(p.dir, p.name)
		if err != nil {
			t.Fatalf("%s: reading the journal: %v", point, err)
		}
		var jd bundle.JournalData
		if j != nil {
			if err := j.Decode(&jd); err != nil {
				t.Fatalf("%s: %v", point, err)
			}
			// ps reports the unsettled restore and changes nothing.
			r := runWithin(t, 2*time.Minute, p.args("ps")...)
			if !strings.Contains(r.stderr, "unfinished restore-all") {
				t.Fatalf("%s: ps does not report the journal:\n%s\n%s", point, r.stdout, r.stderr)
			}
			if j2, _ := journal.Load(p.dir, p.name); j2 == nil {
				t.Fatalf("%s: ps removed the journal", point)
			}
		}
		paused := pausedServices(t, cli, p.name)
		r := up()
		if r.code != 0 {
			t.Fatalf("%s: up exited %d\n%s", point, r.code, r.stderr)
		}
		now := stateOf(t, cli, p)
		holds := map[string]*dataSet{}
		for _, part := range deploymentParts {
			switch {
			case samePart(now[part], old.state[part]):
				holds[part] = old
			case samePart(now[part], want.state[part]):
				holds[part] = want
			default:
				t.Fatalf("%s: the part %s holds neither %s nor %s: against %s: %s; against %s: %s", point, part,
					old.name, want.name, old.name, partDiff(now[part], old.state[part]), want.name, partDiff(now[part], want.state[part]))
			}
		}
		outcome := settledAll(t, point, r.stderr, j, jd)
		var wantSet *dataSet
		switch outcome {
		case "rolled-back":
			wantSet = old
		case "finished":
			wantSet = want
		default: // no journal: killed before the first change, or after the restore finished
			wantSet = holds["database"]
			outcome = "no journal, the restore had not begun (unchanged)"
			if wantSet == want {
				outcome = fmt.Sprintf("no journal, the restore had finished (killed %v)", killed)
			}
		}
		for _, part := range deploymentParts {
			if holds[part] != wantSet {
				t.Fatalf("%s: up says %s, but the part %s holds %s:\n%s", point, outcome, part, holds[part].name, r.stderr)
			}
		}
		if j, _ := journal.Load(p.dir, p.name); j != nil {
			t.Fatalf("%s: journal left after up: %s", point, j.Describe())
		}
		if left, _ := filepath.Glob(filepath.Join(filepath.Dir(sets[0].bundle), ".restore-redis-*")); len(left) > 0 {
			t.Fatalf("%s: the Redis restore's working directory is left after up: %v", point, left)
		}
		checkRunning(t, cli, p, point)
		t.Logf("%s: %s: every part holds %s%s (%s)", point, outcome, wantSet.name, pausedNote(paused), time.Since(pointStart).Round(100*time.Millisecond))
		if wantSet == want {
			cur = 1 - cur
		}
		pruneBundles(t, filepath.Dir(sets[0].bundle), sets[0].bundle, sets[1].bundle)
	}
	t.Logf("the test took %s", time.Since(began).Round(time.Second))
}

// settledAll checks what up said it found and did after a kill, against
// the journal the kill left (j, nil when none), and returns the outcome:
// "rolled-back" or "finished" when up settled the journal, "" when there
// was none to settle.
func settledAll(t *testing.T, point, stderr string, j *journal.Journal, jd bundle.JournalData) string {
	t.Helper()
	settled := ""
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "settled the interrupted restore-all") {
			settled = l
		}
	}
	if j == nil {
		if settled != "" || strings.Contains(stderr, "journal") {
			t.Fatalf("%s: no journal was left, yet up settled one:\n%s", point, stderr)
		}
		return ""
	}
	if settled == "" {
		t.Fatalf("%s: the kill left a journal (%s) and up does not say it settled it:\n%s", point, j.Describe(), stderr)
	}
	if !strings.Contains(stderr, "found the journal") {
		t.Fatalf("%s: up does not say it found the journal:\n%s", point, stderr)
	}
	if !strings.Contains(settled, jd.Bundle) {
		t.Fatalf("%s: up's report does not name the bundle %s: %s", point, jd.Bundle, settled)
	}
	if jd.SafetyBundle != "" && !strings.Contains(settled, jd.SafetyBundle) {
		t.Fatalf("%s: up's report does not name the safety bundle %s: %s", point, jd.SafetyBundle, settled)
	}
	switch {
	case strings.Contains(settled, ": rolled-back: "):
		return "rolled-back"
	case strings.Contains(settled, ": finished: "):
		return "finished"
	}
	t.Fatalf("%s: up's report says neither rolled-back nor finished: %s", point, settled)
	return ""
}

// pausedServices are the project's paused containers' services.
func pausedServices(t *testing.T, cli *client.Client, project string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs, err := compose.List(ctx, cli, project, true)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range cs {
		if c.State == "paused" {
			out = append(out, c.Service)
		}
	}
	return out
}

func pausedNote(paused []string) string {
	if len(paused) == 0 {
		return ""
	}
	return "; the kill had left " + strings.Join(paused, ", ") + " paused"
}

// checkWhole fails unless every part holds want.
func checkWhole(t *testing.T, cli *client.Client, p bundleProject, what string, want deploymentState) {
	t.Helper()
	now := stateOf(t, cli, p)
	for _, part := range deploymentParts {
		if !samePart(now[part], want[part]) {
			t.Fatalf("%s: the part %s differs: %s", what, part, partDiff(now[part], want[part]))
		}
	}
}

// checkRunning fails unless every service runs (not paused) and no helper
// container of a restore is left.
func checkRunning(t *testing.T, cli *client.Client, p bundleProject, point string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, svc := range killAllServices {
		ins, err := cli.ContainerInspect(ctx, p.container(svc), client.ContainerInspectOptions{})
		if err != nil || ins.Container.State == nil || !ins.Container.State.Running || ins.Container.State.Paused {
			st := "missing"
			if err == nil && ins.Container.State != nil {
				st = string(ins.Container.State.Status)
			}
			t.Fatalf("%s: %s is %s after up (%v)", point, svc, st, err)
		}
	}
	if hs := bundleHelpers(ctx, cli, p.name); len(hs) > 0 {
		t.Fatalf("%s: helper containers left after up: %v", point, hs)
	}
}

// bundleHelpers are the helper containers a restore of project started:
// the files' (labelled with the project) and Redis's (labelled with the
// Redis container's ID).
func bundleHelpers(ctx context.Context, cli *client.Client, project string) []string {
	var ids []string
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", "difyctl.restore-helper="+project)})
	if err == nil {
		for _, c := range res.Items {
			ids = append(ids, c.ID)
		}
	}
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", compose.ProjectFilter(project))})
	if err != nil {
		return ids
	}
	for _, c := range cs.Items {
		hs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", "org.difyctl.helper-for="+c.ID)})
		if err != nil {
			continue
		}
		for _, h := range hs.Items {
			ids = append(ids, h.ID)
		}
	}
	return ids
}

// removeBundleHelpers removes what a failed test left of the helper
// containers (not labelled as the project's, so not removed with it).
func removeBundleHelpers(cli *client.Client, project string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, id := range bundleHelpers(ctx, cli, project) {
		cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	}
}

// pruneBundles removes the safety bundles the kills left (and what a kill
// during one left), keeping the two bundles the test restores: the disk
// holds two bundles, not forty.
func pruneBundles(t *testing.T, dir string, keep ...string) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		name := filepath.Join(dir, de.Name())
		if de.IsDir() && (strings.HasPrefix(de.Name(), "bundle_") || strings.HasPrefix(de.Name(), ".bundle-")) && name != keep[0] && name != keep[1] {
			if err := os.RemoveAll(name); err != nil {
				t.Fatal(err)
			}
		}
	}
}
