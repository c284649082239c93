package rdb

import (
	"encoding/binary"
	"sync"
)

// jonesPoly is the Jones polynomial in reflected form, as Redis's crc64.c
// uses it (init 0, no final xor).
const jonesPoly = 0x95ac9329ac4bc9b5

// crcTables is the slicing-by-16 table set, built once on first use (16 KiB
// of work, never repeated: hash/crc64 would rebuild its own slicing table on
// every call of 2 KiB or more for a polynomial other than ISO and ECMA).
var crcTables = sync.OnceValue(func() *[16][256]uint64 {
	t := new([16][256]uint64)
	for i := range 256 {
		c := uint64(i)
		for range 8 {
			if c&1 == 1 {
				c = c>>1 ^ jonesPoly
			} else {
				c >>= 1
			}
		}
		t[0][i] = c
	}
	for i := range 256 {
		c := t[0][i]
		for k := 1; k < 16; k++ {
			c = t[0][c&0xff] ^ c>>8
			t[k][i] = c
		}
	}
	return t
})

// crcUpdate continues Redis's CRC-64 over p.
func crcUpdate(crc uint64, p []byte) uint64 {
	t := crcTables()
	for len(p) >= 16 {
		a := crc ^ binary.LittleEndian.Uint64(p)
		b := binary.LittleEndian.Uint64(p[8:])
		crc = t[15][a&0xff] ^ t[14][a>>8&0xff] ^ t[13][a>>16&0xff] ^ t[12][a>>24&0xff] ^
			t[11][a>>32&0xff] ^ t[10][a>>40&0xff] ^ t[9][a>>48&0xff] ^ t[8][a>>56] ^
			t[7][b&0xff] ^ t[6][b>>8&0xff] ^ t[5][b>>16&0xff] ^ t[4][b>>24&0xff] ^
			t[3][b>>32&0xff] ^ t[2][b>>40&0xff] ^ t[1][b>>48&0xff] ^ t[0][b>>56]
		p = p[16:]
	}
	for _, c := range p {
		crc = t[0][byte(crc)^c] ^ crc>>8
	}
	return crc
}

// CRC64 is Redis's crc64(0, p).
func CRC64(p []byte) uint64 { return crcUpdate(0, p) }
