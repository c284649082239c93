package envgen

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/difyctl/difyctl/internal/atomicfile"
)

// FileMode is the mode of every .env difyctl writes: it holds secrets.
const FileMode os.FileMode = 0o600

// ReadFile parses the .env at path.
func ReadFile(path string) (*Doc, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	d, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// WriteFile writes d to path atomically with mode 0600.
func WriteFile(path string, d *Doc) error {
	return atomicfile.WriteFile(path, d.Bytes(), FileMode)
}

// Backup copies path to path.bak-<UTC timestamp> (mode 0600) and returns the
// copy's name.
func Backup(path string, now time.Time) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	dst := fmt.Sprintf("%s.bak-%s", path, now.UTC().Format("20060102T150405Z"))
	if err := atomicfile.WriteFile(dst, b, FileMode); err != nil {
		return "", err
	}
	return filepath.Clean(dst), nil
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
