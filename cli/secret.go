package cli

import (
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/passman-dev/passman/internal/clibase"
	"github.com/passman-dev/passman/secret"
)

func newSecretCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Write, read and manage secrets and their versions",
		Long: `Write, read and manage secrets and their versions.

A path is 1 to 16 segments separated by '/', each 1 to 128 characters from
A-Z a-z 0-9 . _ - (no leading or trailing '/', no '.' or '..' segments).`,
		Args: clibase.GroupArgs,
		RunE: clibase.GroupRun,
	}
	cmd.AddCommand(
		newSecretPutCmd(a),
		newSecretGetCmd(a),
		newSecretListCmd(a),
		newSecretHistoryCmd(a),
		newSecretMetaCmd(a),
		newSecretRollbackCmd(a),
		newSecretDeleteCmd(a),
		newSecretUndeleteCmd(a),
		newSecretDestroyCmd(a),
		newSecretStageCmd(a),
	)
	return cmd
}

// parseVersion parses a version number argument (1 or more).
func parseVersion(what, s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, clibase.UsageErrorf("%s must be a version number (1 or more), got %q", what, s)
	}
	return n, nil
}

// checkVersions validates a --versions list.
func checkVersions(vs []int) error {
	for _, v := range vs {
		if v < 1 {
			return clibase.UsageErrorf("--versions: version numbers start at 1, got %d", v)
		}
	}
	return nil
}

func joinVersions(vs []int) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ", ")
}

func joinStages(st []secret.Stage) string {
	s := make([]string, len(st))
	for i, v := range st {
		s[i] = string(v)
	}
	return strings.Join(s, ",")
}

// metaFlags are the metadata flags shared by secret put (applied when the
// write creates the secret) and secret meta (an update).
type metaFlags struct {
	owner, description, rotation string
	tags, custom                 []string
	untags, uncustom             []string
	maxVersions                  int
	update                       bool // register the removal flags too
	// rotation spec: connection, its params, generator, grace period
	rotConnection, rotGrace string
	rotParams, rotClasses   []string
	rotLength               int
}

func (m *metaFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&m.owner, "owner", "", "owner of the secret (a team or person)")
	fs.StringVar(&m.description, "description", "", "what the secret is for (never the value)")
	fs.StringArrayVar(&m.tags, "tag", nil, "set tag `key=value` (repeatable)")
	fs.StringVar(&m.rotation, "rotation-period", "", "how often to rotate: Go duration or days, such as 720h or 30d (0 clears)")
	fs.IntVar(&m.maxVersions, "max-versions", 0, "versions to keep (0: the default, 10)")
	fs.StringVar(&m.rotConnection, "rotation-connection", "", "rotate through this connection (generated, or one an administrator defined: passman connection list); \"\" removes the rotation spec")
	fs.StringArrayVar(&m.rotParams, "rotation-param", nil, "per-secret parameter `key=value` of the connection (repeatable; postgres: role or roles, github: name and scope)")
	fs.IntVar(&m.rotLength, "rotation-length", 0, "length of generated values (default 32)")
	fs.StringSliceVar(&m.rotClasses, "rotation-classes", nil, "character classes of generated values: upper,lower,digits,symbols")
	fs.StringVar(&m.rotGrace, "rotation-grace", "", "how long the previous value stays valid before it is revoked, such as 1h (0: never revoked)")
	if m.update {
		fs.StringArrayVar(&m.untags, "untag", nil, "remove tag `key` (repeatable)")
		fs.StringArrayVar(&m.custom, "custom", nil, "set custom field `key=value` (repeatable)")
		fs.StringArrayVar(&m.uncustom, "uncustom", nil, "remove custom field `key` (repeatable)")
	}
}

// build returns the update the flags ask for, nil if none was given.
func (m *metaFlags) build(fs *pflag.FlagSet) (*secret.MetadataUpdate, error) {
	var u secret.MetadataUpdate
	changed := false
	if fs.Changed("owner") {
		u.Owner, changed = &m.owner, true
	}
	if fs.Changed("description") {
		u.Description, changed = &m.description, true
	}
	if fs.Changed("rotation-period") {
		d, err := secret.ParseDuration(m.rotation)
		if err != nil {
			return nil, &clibase.UsageError{Err: err}
		}
		u.RotationPeriod, changed = &d, true
	}
	if fs.Changed("max-versions") {
		u.MaxVersions, changed = &m.maxVersions, true
	}
	rot := fs.Changed("rotation-connection")
	for _, f := range []string{"rotation-param", "rotation-length", "rotation-classes", "rotation-grace"} {
		if fs.Changed(f) && !rot {
			return nil, clibase.UsageErrorf("--%s needs --rotation-connection: the rotation spec is set as a whole", f)
		}
	}
	if rot {
		r := &secret.Rotation{Connection: m.rotConnection, Length: m.rotLength, Classes: m.rotClasses}
		if len(m.rotParams) > 0 {
			r.Params = map[string]string{}
			for _, kv := range m.rotParams {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return nil, clibase.UsageErrorf("--rotation-param wants key=value")
				}
				r.Params[k] = v
			}
		}
		if m.rotGrace != "" {
			d, err := secret.ParseDuration(m.rotGrace)
			if err != nil {
				return nil, &clibase.UsageError{Err: err}
			}
			r.GracePeriod = d
		}
		if r.Connection != "" {
			// The spec's shape now; whether the connection lets the
			// secret use it is the store's to say, when it is set.
			if err := r.Validate(); err != nil {
				return nil, &clibase.UsageError{Err: err}
			}
		}
		u.Rotation, changed = r, true
	}
	var err error
	if u.Tags, err = labelUpdate("tag", m.tags, "untag", m.untags); err != nil {
		return nil, err
	}
	if u.Custom, err = labelUpdate("custom", m.custom, "uncustom", m.uncustom); err != nil {
		return nil, err
	}
	if !changed && u.Tags == nil && u.Custom == nil {
		return nil, nil
	}
	return &u, nil
}

// labelUpdate merges --tag k=v and --untag k into one map for a merging
// MetadataUpdate, where an empty value removes the key.
func labelUpdate(setFlag string, sets []string, unsetFlag string, unsets []string) (map[string]string, error) {
	if len(sets) == 0 && len(unsets) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range sets {
		k, v, ok := strings.Cut(kv, "=")
		switch {
		case !ok || k == "":
			return nil, clibase.UsageErrorf("--%s wants key=value, got %q", setFlag, kv)
		case v == "":
			return nil, clibase.UsageErrorf("--%s %s= has an empty value; to remove %s use --%s %s", setFlag, k, k, unsetFlag, k)
		}
		out[k] = v
	}
	for _, k := range unsets {
		if k == "" {
			return nil, clibase.UsageErrorf("--%s wants a key", unsetFlag)
		}
		if _, both := out[k]; both {
			return nil, clibase.UsageErrorf("%q is both set (--%s) and removed (--%s)", k, setFlag, unsetFlag)
		}
		out[k] = ""
	}
	return out, nil
}

// sortedPairs renders a label map as "k=v, k=v" in key order.
func sortedPairs(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + m[k]
	}
	return strings.Join(keys, ", ")
}
