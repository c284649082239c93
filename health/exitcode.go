package health

import "fmt"

// ExitMeaning says what an exit code usually means, for an operator reading
// why a container would not stay up ("" when the code says nothing
// general). oom is the engine's OOMKilled flag.
func ExitMeaning(code int, oom bool) string {
	if oom {
		return "killed: out of memory (raise the memory limit or lower the load)"
	}
	switch code {
	case 0:
		return "its command ended without an error, but a server is expected to keep running"
	case 1:
		return "a generic error: its log says which"
	case 2:
		return "usually a bad flag or argument to its command"
	case 125:
		return "the engine could not run the command"
	case 126:
		return "the command was found but could not be executed (not executable, or a wrong architecture)"
	case 127:
		return "command not found: the command or a program it runs is missing from the image (check command, entrypoint and image)"
	case 130:
		return "interrupted (SIGINT)"
	case 134:
		return "aborted (SIGABRT): the program crashed on an assertion"
	case 137:
		return "killed (SIGKILL): out of memory, or killed by the engine or an operator"
	case 139:
		return "segmentation fault (SIGSEGV): the program crashed"
	case 143:
		return "terminated (SIGTERM): it was asked to stop"
	}
	if code > 128 && code < 160 {
		return fmt.Sprintf("killed by signal %d", code-128)
	}
	return ""
}

// exitWords is "exited with code N (meaning)".
func exitWords(code int, oom bool) string {
	s := fmt.Sprintf("exited with code %d", code)
	if m := ExitMeaning(code, oom); m != "" {
		s += " (" + m + ")"
	}
	return s
}
