package bundle

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"

	"filippo.io/age"
)

// PartCheck is the verification of one part.
type PartCheck struct {
	Part    string           `json:"part"`
	OK      bool             `json:"ok"`
	Checked string           `json:"checked"` // what was checked
	Counts  map[string]int64 `json:"counts,omitempty"`
	Error   string           `json:"error,omitempty"`
}

// Verification of a bundle.
type Verification struct {
	Path     string      `json:"path"`
	Manifest *Manifest   `json:"manifest"`
	Parts    []PartCheck `json:"parts"`
	OK       bool        `json:"ok"`
}

// Verify reads every part of the bundle at dir back: the stored bytes'
// size and SHA-256, and, when the part can be read (not encrypted, or an
// identity given), its decompressed stream's size and SHA-256 and its
// structure: the dump's header, the RDB walk, every tar header and byte.
// A part missing from the manifest's list or an extra file is reported.
// The error is nil only when every part verified in full.
func Verify(dir string, ids []age.Identity) (*Verification, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	v := &Verification{Path: dir, Manifest: m, OK: true}
	var firstErr error
	// The parts are read back at once, one per CPU: each is read,
	// decompressed and hashed by one goroutine.
	checks := make([]PartCheck, len(m.Parts))
	sem := make(chan struct{}, max(1, runtime.NumCPU()))
	var wg sync.WaitGroup
	for i, p := range m.Parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			checks[i] = verifyPart(dir, p, m.DBType, ids)
		}()
	}
	wg.Wait()
	for _, c := range checks {
		if !c.OK {
			v.OK = false
			if firstErr == nil {
				firstErr = fmt.Errorf("%s", c.Error)
			}
		}
		v.Parts = append(v.Parts, c)
	}
	// Files the manifest does not name are not part of the bundle: say so.
	des, err := os.ReadDir(dir)
	if err != nil {
		return v, err
	}
	named := map[string]bool{ManifestName: true}
	for _, p := range m.Parts {
		named[p.File] = true
	}
	for _, de := range des {
		if !named[de.Name()] {
			v.OK = false
			v.Parts = append(v.Parts, PartCheck{Part: de.Name(), Error: "a file the manifest does not name"})
			if firstErr == nil {
				firstErr = fmt.Errorf("%s holds %s, which its manifest does not name", dir, de.Name())
			}
		}
	}
	if firstErr != nil {
		return v, fmt.Errorf("bundle %s failed verification: %w", dir, firstErr)
	}
	return v, nil
}

func verifyPart(dir string, p Part, dbType string, ids []age.Identity) PartCheck {
	c := PartCheck{Part: p.Name}
	if p.Encryption != "" && len(ids) == 0 {
		c.Checked = "size and SHA-256 of the stored bytes (encrypted: pass --identity to check the contents)"
		if err := checkStored(dir, p); err != nil {
			c.Error = err.Error()
			return c
		}
		c.OK = true
		return c
	}
	r, err := openPart(dir, p, ids)
	if err != nil {
		c.Error = err.Error()
		return c
	}
	defer r.Close()
	counts, err := checkerFor(p, dbType)(r)
	if err != nil {
		c.Error = fmt.Sprintf("part %s: %v", p.Name, err)
		return c
	}
	if err := r.check(); err != nil {
		c.Error = err.Error()
		return c
	}
	c.OK, c.Counts = true, counts
	c.Checked = "sizes and SHA-256 stored and decompressed, " + structureWords(p, dbType)
	return c
}

func structureWords(p Part, dbType string) string {
	switch p.Kind {
	case KindDatabase, KindVector:
		if dbType == "mysql" && p.Kind == KindDatabase {
			return "mysqldump completion line"
		}
		return "pg_dump custom-format header"
	case KindRedis:
		return "RDB walked with its CRC-64"
	}
	return "tar stream read to its end"
}

// ReadIdentities reads age identities from a file (age-keygen's format).
func ReadIdentities(path string) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--identity: %w", err)
	}
	defer f.Close()
	ids, err := age.ParseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("--identity %s: %w", path, err)
	}
	return ids, nil
}

// ParseRecipients parses --encrypt-to values: age recipients (age1...).
func ParseRecipients(values []string) ([]age.Recipient, error) {
	var out []age.Recipient
	for _, v := range values {
		r, err := age.ParseX25519Recipient(v)
		if err != nil {
			return nil, fmt.Errorf("--encrypt-to %q: %w (an age recipient, age1..., as age-keygen prints)", v, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// copyPart writes the raw stream of a part to w, verifying it on the way
// (structure, sizes, hashes).
func copyPart(dir string, p Part, dbType string, ids []age.Identity, w io.Writer) (map[string]int64, error) {
	r, err := openPart(dir, p, ids)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	counts, err := checkedCopy(w, r, checkerFor(p, dbType))
	if err != nil {
		return nil, fmt.Errorf("part %s: %w", p.Name, err)
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	return counts, nil
}
