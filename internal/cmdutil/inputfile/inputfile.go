// Package inputfile marks errors about a file the operator gave as input
// (missing, a directory, unreadable, unparsable): difyctl exits 2 for them.
// It has no dependencies so that any package reading such a file (envgen,
// backup, compose) can use it.
package inputfile

import (
	"errors"
	"fmt"
)

// Error is an input file that cannot be used.
type Error struct {
	Path string
	Err  error
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("%s: %v", e.Path, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Wrap marks err as being about the input file at path (nil stays nil). The
// message is path: err, so err should not repeat the path.
func Wrap(path string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Path: path, Err: err}
}

// Mark marks err (which already names its file) as an input-file error.
func Mark(err error) error {
	if err == nil {
		return nil
	}
	return &Error{Err: err}
}

// Is reports whether err is an input-file error.
func Is(err error) bool {
	var e *Error
	return errors.As(err, &e)
}
