package cmdutil

// ProcEnv is what a use-case reads of the process environment, as the
// factory gives it (the only door to it): Getenv for one variable (the lock
// directory, registry credentials), Environ for the whole list (compose
// interpolation, the journal settlers). Options structs embed it.
type ProcEnv struct {
	Getenv  func(string) string // nil: no variable at all (EnvOrNone)
	Environ []string
}

// ProcEnv is the factory's view of the process environment.
func (f *Factory) ProcEnv() ProcEnv {
	return ProcEnv{Getenv: f.Getenv, Environ: f.Environment()}
}

// EnvOrNone is getenv, or an empty environment when getenv is nil. A
// use-case reads the environment its options carry (the factory's Getenv),
// never the process's: options built without one see no variable at all.
func EnvOrNone(getenv func(string) string) func(string) string {
	if getenv == nil {
		return func(string) string { return "" }
	}
	return getenv
}
