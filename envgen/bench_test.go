package envgen

import (
	"fmt"
	"strings"
	"testing"
)

func bigEnv(n int) []byte {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i%10 == 0 {
			fmt.Fprintf(&b, "# operator setting %d\n", i)
			continue
		}
		fmt.Fprintf(&b, "OPERATOR_SETTING_%07d=value-%07d-abcdefghij\n", i, i)
	}
	return []byte(b.String())
}

func BenchmarkParseValidate100k(b *testing.B) {
	src := bigEnv(100000)
	b.SetBytes(int64(len(src)))
	for i := 0; i < b.N; i++ {
		d, err := Parse(src)
		if err != nil {
			b.Fatal(err)
		}
		ValidateReport(d, DefaultSchema(), MaxFindings)
	}
}
