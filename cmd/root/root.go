// Package root assembles difyctl's command tree and its global flags.
package root

import (
	"os"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/cmd/backupcmd"
	"github.com/difyctl/difyctl/cmd/completion"
	"github.com/difyctl/difyctl/cmd/config"
	"github.com/difyctl/difyctl/cmd/doctor"
	"github.com/difyctl/difyctl/cmd/env"
	"github.com/difyctl/difyctl/cmd/initcmd"
	"github.com/difyctl/difyctl/cmd/lifecycle"
	"github.com/difyctl/difyctl/cmd/profilescmd"
	"github.com/difyctl/difyctl/cmd/pull"
	"github.com/difyctl/difyctl/cmd/releases"
	"github.com/difyctl/difyctl/cmd/restore"
	"github.com/difyctl/difyctl/cmd/setup"
	"github.com/difyctl/difyctl/cmd/up"
	"github.com/difyctl/difyctl/cmd/upgrade"
	"github.com/difyctl/difyctl/cmd/version"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/dockerclient"
)

// New returns the root command bound to f.
func New(f *cmdutil.Factory) *cobra.Command {
	var engineInsecure bool
	cmd := &cobra.Command{
		Use:   "difyctl",
		Short: "Install and operate a self-hosted Dify on Docker",
		Long: `difyctl installs and operates a self-hosted Dify on a Docker host: it writes a
safe .env, starts Dify's services in dependency order through the Docker Engine
API, and backs Redis up and restores it.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := cmdutil.ValidateOutput(f.Output); err != nil {
				return err
			}
			if engineInsecure {
				// One switch for every engine connection of this run (doctor,
				// version and the use-cases open their own).
				os.Setenv(dockerclient.InsecureEnv, "1")
			}
			if f.NoColor {
				f.IOStreams.DisableColor()
			}
			if f.Verbose {
				if dir, name, err := f.Project(); err == nil {
					f.Debugf("project %s in %s", name, dir)
				}
				if ep, err := dockerclient.ResolveEndpoint(f.Getenv); err == nil {
					host := ep.Host
					if host == "" {
						host = client.DefaultDockerHost
					}
					f.Debugf("engine endpoint %s (from %s)", host, ep.Source)
				}
			}
			return nil
		},
	}
	cmd.SetOut(f.IOStreams.Out)
	cmd.SetErr(f.IOStreams.ErrOut)
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
	})

	pf := cmd.PersistentFlags()
	pf.BoolVar(&engineInsecure, "engine-insecure", false, "allow a tcp:// engine without verified TLS (prints a warning; secrets then cross the network unprotected)")
	pf.StringVar(&f.ProjectDir, "project-dir", "", "project directory holding .env and data (default: the current directory)")
	pf.StringVarP(&f.ProjectNameFlag, "project-name", "p", "", "compose project name (default: COMPOSE_PROJECT_NAME from .env, else \"dify\")")
	pf.StringVarP(&f.Output, "output", "o", cmdutil.OutputText, "output format: text or json")
	pf.BoolVar(&f.NoColor, "no-color", false, "disable colour (also NO_COLOR)")
	pf.BoolVarP(&f.Verbose, "verbose", "v", false, "print debugging detail to stderr")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))

	cmd.CompletionOptions.DisableDefaultCmd = true
	cmd.AddCommand(
		version.NewCmd(f, nil),
		doctor.NewCmd(f, nil),
		completion.NewCmd(f, nil),
		initcmd.NewCmd(f, nil),
		env.NewCmd(f),
		profilescmd.NewCmd(f, nil),
		config.NewCmd(f, nil),
		backupcmd.NewCmd(f),
		restore.NewCmd(f),
		up.NewCmd(f, nil),
		pull.NewCmd(f, nil),
		releases.NewCmd(f, nil),
		upgrade.NewCmd(f, nil),
		upgrade.NewCmdRollback(f, nil),
		setup.NewCmd(f, nil),
	)
	cmd.AddCommand(lifecycle.NewCmds(f)...)
	return cmd
}
