package cmdutil

// EnvOrNone is getenv, or an empty environment when getenv is nil. A
// use-case reads the environment its options carry (the factory's Getenv),
// never the process's: options built without one see no variable at all.
func EnvOrNone(getenv func(string) string) func(string) string {
	if getenv == nil {
		return func(string) string { return "" }
	}
	return getenv
}
