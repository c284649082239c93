package envgen

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/difyctl/difyctl/internal/atomicfile"
	"github.com/difyctl/difyctl/internal/cmdutil/inputfile"
)

// FileMode is the mode of every new .env difyctl writes: it holds secrets.
const FileMode os.FileMode = 0o600

// ErrNotExist is returned (wrapped) by ReadFile for a missing file.
var ErrNotExist = fs.ErrNotExist

// ReadFile parses the .env at path. Every error is an input-file error
// (exit 2) that names the file, and for a line that cannot be read its number
// and variable, never its text.
//
// ${VAR} in values and bare KEY lines are resolved against the process
// environment first, as docker compose resolves them, so that `env get`
// and `config` agree.
func ReadFile(path string) (*Doc, error) {
	return ReadFileWithLookup(path, os.LookupEnv)
}

// ReadFileWithLookup is ReadFile with lookup consulted first for ${VAR}
// and bare KEY lines, as docker compose consults the process environment.
func ReadFileWithLookup(path string, lookup func(string) (string, bool)) (*Doc, error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, inputfile.Wrap(path, fmt.Errorf("does not exist: %w", fs.ErrNotExist))
		}
		return nil, inputfile.Mark(err)
	}
	if st.IsDir() {
		return nil, inputfile.Wrap(path, errors.New("is a directory, not a .env file"))
	}
	s, err := readString(path, st.Size())
	if err != nil {
		return nil, inputfile.Mark(err)
	}
	d, err := parseString(s, lookup)
	if err != nil {
		return nil, inputfile.Wrap(path, err)
	}
	return d, nil
}

// readString reads a file into one string without a second copy.
func readString(path string, size int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var b strings.Builder
	b.Grow(int(size) + 1)
	if _, err := io.Copy(&b, f); err != nil {
		return "", err
	}
	return b.String(), nil
}

// WriteFile writes d to path atomically through atomicfile.ReplaceFile: a
// symlinked .env stays a link and its target changes, an existing file keeps
// its mode and owner, a new one gets mode 0600.
func WriteFile(path string, d *Doc) error {
	return atomicfile.ReplaceFile(path, d.Bytes(), FileMode)
}

// BackupSuffix is the suffix of the copy Backup keeps at time now.
func BackupSuffix(now time.Time) string {
	return ".bak-" + now.UTC().Format("20060102T150405Z")
}

// Backup copies path to path.bak-<UTC timestamp> (mode 0600), or
// path.bak-<timestamp>_2, _3, ... when that name is taken, and returns the
// copy's name: an earlier copy is never overwritten.
func Backup(path string, now time.Time) (string, error) {
	return atomicfile.Backup(path, BackupSuffix(now), FileMode)
}

// SetLinked sets key and every variable tied to it by a Link (and
// CELERY_BROKER_URL when a Redis setting changes), returning the names it
// changed besides key.
func SetLinked(d *Doc, key, value string) []string {
	d.Set(key, value)
	var also []string
	env := d.Map()
	for _, l := range Links {
		if l.Primary != key || l.Relation == Member {
			continue
		}
		if _, present := env[l.Secondary]; present && (l.Relation == Equal || env[l.Secondary] != "") {
			d.Set(l.Secondary, value)
			also = append(also, l.Secondary)
		}
	}
	for _, l := range Links {
		if l.Primary == key && l.Relation == Member {
			if _, present := env[l.Secondary]; present {
				d.Set(l.Secondary, value)
				also = append(also, l.Secondary)
			}
		}
	}
	switch key {
	case "REDIS_PASSWORD", "REDIS_USERNAME", "REDIS_HOST", "REDIS_PORT", "REDIS_USE_SSL":
		if _, ok := env["CELERY_BROKER_URL"]; ok {
			d.Set("CELERY_BROKER_URL", brokerURL(d.Map()))
			also = append(also, "CELERY_BROKER_URL")
		}
	}
	return also
}
