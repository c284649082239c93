package env

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/backup"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/envbak"
)

// newBackupsCmd lists the .env copies difyctl kept; backup prune rotates
// them with the backups' retention.
func newBackupsCmd(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "backups",
		Short: "List the .env copies kept by init --force, env set/upgrade/import (rotated by backup prune)",
		Args:  cmdutil.Args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			dir, _, err := f.Project()
			if err != nil {
				return err
			}
			es, err := envbak.List(dir)
			if err != nil {
				return err
			}
			if f.JSON() {
				if es == nil {
					es = []backup.Entry{}
				}
				return cmdutil.WriteJSON(f.IOStreams.Out, es)
			}
			if len(es) == 0 {
				fmt.Fprintf(f.IOStreams.ErrOut, "no .env copies in %s\n", dir)
				return nil
			}
			for _, e := range es {
				fmt.Fprintf(f.IOStreams.Out, "%s  %s  %d bytes\n", e.Name, e.Time.Format("2006-01-02 15:04:05Z"), e.Size)
			}
			fmt.Fprintln(f.IOStreams.ErrOut, "they hold earlier secrets; backup prune deletes those past --retention-days (keeping --keep-min)")
			return nil
		},
	}
}
