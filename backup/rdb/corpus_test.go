package rdb

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// corpusDir holds third-party RDB files with what redis-check-rdb 7.4.1 and a
// Redis 7.4.1 server said about each (verdicts.tsv). Read in place, never
// copied into the repository.
const corpusDir = "../../../shared/rdb-corpus"

type corpusFile struct {
	name, path string
	check      string // redis-check-rdb 7.4.1
	server     string // redis-server 7.4.1 load, "" when not measured
}

func corpus(t testing.TB) []corpusFile {
	t.Helper()
	f, err := os.Open(filepath.Join(corpusDir, "verdicts.tsv"))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("RDB corpus missing (%v): it is part of the test setup under CI", err)
		}
		t.Skipf("RDB corpus not here: %v", err)
	}
	defer f.Close()
	paths := map[string]string{}
	filepath.WalkDir(corpusDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			paths[d.Name()] = p
		}
		return nil
	})
	var out []corpusFile
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		c := strings.Split(sc.Text(), "\t")
		if len(c) < 2 {
			continue
		}
		cf := corpusFile{name: c[0], path: paths[c[0]], check: c[1]}
		if len(c) > 2 {
			cf.server = strings.TrimSpace(c[2])
		}
		if cf.path == "" {
			t.Fatalf("verdicts.tsv names %s, not in the corpus", c[0])
		}
		out = append(out, cf)
	}
	if len(out) < 100 {
		t.Fatalf("corpus has %d files, expected about 100", len(out))
	}
	return out
}

// agrees compares the verifier with Redis: with the server's verdict where
// there is one (it loads the file or not; the keys and expiries it ends up
// with), else with redis-check-rdb's (OK or not; keys and expiries read,
// dropped ones included since it counts every record).
func agrees(c corpusFile, info Info, err error) (bool, string) {
	if c.server != "" {
		var k, e int64
		if n, _ := fmt.Sscanf(c.server, "loaded %d/%d", &k, &e); n == 2 {
			if err != nil {
				return false, fmt.Sprintf("server loads it (%d keys), verifier refuses: %v", k, err)
			}
			if info.Keys != k || info.Expires != e {
				return false, fmt.Sprintf("server holds %d keys/%d expires, verifier counts %d/%d", k, e, info.Keys, info.Expires)
			}
			return true, ""
		}
		if err == nil {
			return false, "server refuses it (" + c.server + "), verifier accepts"
		}
		return true, ""
	}
	var k, e int64
	if n, _ := fmt.Sscanf(c.check, "OK k=%d e=%d", &k, &e); n == 2 {
		if err != nil {
			return false, fmt.Sprintf("redis-check-rdb OK, verifier refuses: %v", err)
		}
		if got, gotE := info.Keys+info.Dropped.Total(), info.Expires+info.Dropped.WithExpiry; got != k || gotE != e {
			return false, fmt.Sprintf("redis-check-rdb reads %d keys/%d expires, verifier %d/%d", k, e, got, gotE)
		}
		return true, ""
	}
	if err == nil {
		return false, "redis-check-rdb refuses it (" + c.check + "), verifier accepts"
	}
	return true, ""
}

func TestCorpusAgreesWithRedis(t *testing.T) {
	files := corpus(t)
	agree := 0
	for _, c := range files {
		f, err := os.Open(c.path)
		if err != nil {
			t.Fatal(err)
		}
		info, verr := Verify(f)
		f.Close()
		if ok, why := agrees(c, info, verr); ok {
			agree++
		} else {
			t.Errorf("%s: %s", c.name, why)
		}
	}
	t.Logf("verifier agrees with Redis on %d of %d corpus files", agree, len(files))
}

// The counts Redis ends up with, beside what the file holds.
func TestCorpusDroppedKeys(t *testing.T) {
	files := corpus(t)
	byName := map[string]string{}
	for _, c := range files {
		byName[c.name] = c.path
	}
	verify := func(name string, now time.Time) Info {
		f, err := os.Open(byName[name])
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		info, err := VerifyAt(f, now)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return info
	}
	// Redis's own asset: empty keys of every type, which the server skips.
	info := verify("corrupt_empty_keys.rdb", time.Now())
	if info.Keys != 0 || info.Dropped.Empty == 0 {
		t.Fatalf("corrupt_empty_keys.rdb: %+v; want 0 keys kept, all dropped as empty", info)
	}
	// Hashes with field expiries and fields without: kept whenever loaded
	// (crafted_test.go has hashes whose every field expires).
	for _, name := range []string{"hash_with_expire_v12.rdb", "hash_lp_with_hexpire_v12.rdb"} {
		before, after := verify(name, time.Unix(0, 0)), verify(name, time.Now().Add(100*365*24*time.Hour))
		if before.Keys != 1 || before.FieldExpiryHashes != 1 || after.Keys != 1 || after.Dropped.Total() != 0 {
			t.Errorf("%s: before %+v after %+v", name, before, after)
		}
	}
}
