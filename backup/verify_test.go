package backup

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/difyctl/difyctl/backup/rdb"
)

// tinyRDB is an RDB v9 of one string key; crc false writes the 0 that
// rdbchecksum no leaves.
func tinyRDB(crc bool) []byte {
	b := []byte("REDIS0009\xfe\x00\x00\x01k\x01v\xff")
	sum := uint64(0)
	if crc {
		sum = rdb.CRC64(b)
	}
	return binary.LittleEndian.AppendUint64(b, sum)
}

// The restore uploads from the descriptor it verified: a file swapped in
// at the same path afterwards is not what Redis gets.
func TestVerifiedReadsTheVerifiedBytes(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "redis_20260101_000000.rdb")
	good := tinyRDB(true)
	if err := os.WriteFile(p, good, 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := OpenVerified(p)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	swapped := filepath.Join(dir, "other")
	os.WriteFile(swapped, []byte("not an rdb at all"), 0o600)
	if err := os.Rename(swapped, p); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // every reader starts at the beginning
		got, err := io.ReadAll(v.Reader())
		if err != nil || !bytes.Equal(got, good) || v.Size() != int64(len(good)) {
			t.Fatalf("read %q %v", got, err)
		}
	}
}

func TestVerifiedAgainstManifest(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "redis_20260101_000000.rdb")
	b := tinyRDB(false)
	os.WriteFile(p, b, 0o600)
	// No manifest, no checksum: walked only, nothing else checked.
	v, err := OpenVerified(p)
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	if got := Checked(v.Info, v.Manifest); got != "walked, not checksummed (saved with rdbchecksum no); no manifest, so nothing else checked its bytes" {
		t.Fatal(got)
	}
	// With a manifest, its SHA-256 stands in for the checksum.
	m := Manifest{File: filepath.Base(p), Size: int64(len(b)), SHA256: "e3b0", CreatedAt: time.Now()}
	if err := writeManifest(p, &m); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenVerified(p); err == nil || !strings.Contains(err.Error(), "does not match its manifest") {
		t.Fatalf("wrong sha256 accepted: %v", err)
	}
	m.SHA256 = sha256Hex(b)
	writeManifest(p, &m)
	info, man, err := VerifyFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := Checked(info, man); got != "walked, not checksummed (saved with rdbchecksum no), SHA-256 matches the manifest" {
		t.Fatal(got)
	}
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
