package cmdutil

import (
	"encoding/json"
	"fmt"
	"io"
)

// Output formats for --output.
const (
	OutputText = "text"
	OutputJSON = "json"
)

// ValidateOutput checks an --output value.
func ValidateOutput(format string) error {
	switch format {
	case OutputText, OutputJSON:
		return nil
	}
	return UsageError("--output %q is not a format; use text or json", format)
}

// WriteJSON writes v as indented JSON followed by a newline.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("writing JSON: %w", err)
	}
	return nil
}
