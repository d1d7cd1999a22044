package cli

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/client"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/secret"
)

// connectionAdmin is what the connection commands need: the server's
// (client.Client) or the local store's (core.Local).
type connectionAdmin interface {
	passman.Service
	passman.Connections
}

var (
	_ connectionAdmin = (*client.Client)(nil)
	_ connectionAdmin = (*core.Local)(nil)
)

func (a *app) withConnections(ctx context.Context, fn func(connectionAdmin) error) error {
	return withBackend(ctx, a, func(c *client.Client) connectionAdmin { return c },
		func(l *core.Local) connectionAdmin { return l }, fn)
}

func newConnectionCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "connection",
		Short: "Define the connections rotations use to reach target systems (admin)",
		Long: `A connection is an administrator's: which connector (postgres, github,
webhook, exec) reaches which target with which credentials, and which secrets
may use it. A secret's rotation spec only names a connection and the few
per-secret params its connector takes (postgres: role or roles; github: name
and, unless the connection pins it, the scope), so whoever may write a
secret cannot choose what passman runs or where it sends credentials.

Credentials in a connection's config are references, resolved with the
connection's authority at each step: env:NAME (the environment of the passman
process: the server's, or yours locally) or secret:PATH (a managed secret,
read and audited as the connection's). Every command is an admin action and
works on the server when --addr or PASSMAN_ADDR is set.`,
		Args: groupArgs,
		RunE: groupRun,
	}
	cmd.AddCommand(newConnectionPutCmd(a), newConnectionGetCmd(a), newConnectionListCmd(a), newConnectionDeleteCmd(a), newConnectionMigrateCmd(a))
	return cmd
}

func newConnectionPutCmd(a *app) *cobra.Command {
	var c secret.Connection
	var config []string
	cmd := &cobra.Command{
		Use:   "put NAME --connector KIND --allow-path PATTERN... [--config KEY=VALUE]... [--allow-role PATTERN]...",
		Short: "Create or replace a connection",
		Long: `Create or replace a connection. --allow-path names the secrets that may use
it: a path, or a prefix ending in * (team-a/*). A postgres connection also
needs --allow-role for the roles its secrets may name (app_*). The exec
connector runs only programs a server's operator lists in its configuration
(rotation.exec_programs).`,
		Example: `  passman connection put pg-team-a --connector postgres \
      --config admin_dsn=env:PG_ADMIN_DSN --allow-path 'team-a/*' --allow-role 'team_a_*'
  passman connection put gh-acme-app --connector github \
      --config token=secret:ops/github-token --config owner=acme --config repo=app \
      --allow-path 'team-a/ci/*'`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c.Name = args[0]
			if c.Connector == "" {
				return usageErrorf("--connector is required")
			}
			for _, kv := range config {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usageErrorf("--config wants KEY=VALUE")
				}
				if c.Config == nil {
					c.Config = map[string]string{}
				}
				c.Config[k] = v
			}
			var out secret.Connection
			err := a.withConnections(cmd.Context(), func(s connectionAdmin) error {
				var err error
				out, err = s.PutConnection(cmd.Context(), c)
				return err
			})
			if err != nil {
				return fmt.Errorf("put connection %s: %w", c.Name, err)
			}
			return a.out.emit(out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Connection %s (%s) saved.\n", out.Name, out.Connector)
				return err
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&c.Connector, "connector", "", "the connector `KIND`: postgres, github, webhook or exec (required)")
	fs.StringArrayVar(&config, "config", nil, "connector setting `KEY=VALUE`; credentials as env:NAME or secret:PATH (repeatable)")
	fs.StringArrayVar(&c.AllowedPaths, "allow-path", nil, "secret `PATTERN` that may use it: a path or a prefix ending in * (repeatable, required)")
	fs.StringArrayVar(&c.AllowedRoles, "allow-role", nil, "postgres role `PATTERN` its secrets may name: a role or a prefix ending in * (repeatable)")
	return cmd
}

func newConnectionGetCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show a connection",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var c secret.Connection
			err := a.withConnections(cmd.Context(), func(s connectionAdmin) error {
				var err error
				c, err = s.GetConnection(cmd.Context(), args[0])
				return err
			})
			if err != nil {
				return fmt.Errorf("get connection %s: %w", args[0], err)
			}
			return a.out.emit(c, func(w io.Writer) error { return connectionText(w, c) })
		},
	}
}

func connectionText(w io.Writer, c secret.Connection) error {
	t := newTable(w, "FIELD", "VALUE")
	t.row("name", c.Name)
	t.row("connector", c.Connector)
	for _, k := range slices.Sorted(maps.Keys(c.Config)) {
		t.row("config."+k, c.Config[k])
	}
	t.row("allowed_paths", strings.Join(c.AllowedPaths, " "))
	if len(c.AllowedRoles) > 0 {
		t.row("allowed_roles", strings.Join(c.AllowedRoles, " "))
	}
	if !c.UpdatedAt.IsZero() {
		t.row("updated", timeText(c.UpdatedAt)+" by "+c.UpdatedBy)
	}
	return t.flush()
}

func newConnectionListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List connections",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var all []secret.Connection
			err := a.withConnections(cmd.Context(), func(s connectionAdmin) error {
				var err error
				all, err = s.ListConnections(cmd.Context())
				return err
			})
			if err != nil {
				return fmt.Errorf("list connections: %w", err)
			}
			return a.out.emit(all, func(w io.Writer) error {
				t := newTable(w, "NAME", "CONNECTOR", "ALLOWED PATHS", "ALLOWED ROLES")
				for _, c := range all {
					paths := strings.Join(c.AllowedPaths, " ")
					if c.Name == secret.GeneratedConnection {
						paths = "(any: built in, no target)"
					}
					t.row(c.Name, c.Connector, paths, strings.Join(c.AllowedRoles, " "))
				}
				return t.flush()
			})
		},
	}
}

func newConnectionDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a connection (secrets naming it stop rotating)",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := a.withConnections(cmd.Context(), func(s connectionAdmin) error {
				return s.DeleteConnection(cmd.Context(), args[0])
			})
			if err != nil {
				return fmt.Errorf("delete connection %s: %w", args[0], err)
			}
			return a.out.emit(map[string]string{"deleted": args[0]}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Deleted connection %s.\n", args[0])
				return err
			})
		},
	}
}

func newConnectionMigrateCmd(a *app) *cobra.Command {
	var prefix string
	var apply bool
	cmd := &cobra.Command{
		Use:   "migrate [--prefix PREFIX] [--apply]",
		Short: "Move rotation specs from before connections to connections",
		Long: `Rotation specs written before connections existed named a connector and
its whole configuration (credentials, endpoints, programs) in the secret's
metadata, which anyone allowed to write the secret could change. Such specs
no longer run. migrate plans their move: each spec's per-secret params stay
with the secret, the rest becomes a connection shared by the secrets with the
same connector and configuration, allowing exactly their paths (and roles).
Read the plan: it is the administrator who adopts what those specs say.
--apply then creates the connections and rewrites the specs.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var m rotation.Migration
			err := a.withConnections(ctx, func(s connectionAdmin) error {
				var err error
				if m, err = rotation.Connectors(rotation.ConnectorOptions{ExecAnyProgram: true}).PlanMigration(ctx, s, prefix); err != nil {
					return err
				}
				if apply {
					return rotation.ApplyMigration(ctx, s, m)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("migrate rotation specs: %w", err)
			}
			return a.out.emit(m, func(w io.Writer) error { return migrationText(w, m, apply) })
		},
	}
	cmd.Flags().StringVar(&prefix, "prefix", "", "only secrets under `PREFIX`")
	cmd.Flags().BoolVar(&apply, "apply", false, "create the connections and rewrite the specs")
	return cmd
}

func migrationText(w io.Writer, m rotation.Migration, applied bool) error {
	if len(m.Secrets) == 0 {
		_, err := fmt.Fprintln(w, "No rotation spec predates connections.")
		return err
	}
	verb := map[bool]string{false: "would", true: "did"}[applied]
	for _, ch := range m.Connections {
		c := ch.Connection
		what := "extend"
		if ch.Create {
			what = "create"
		}
		fmt.Fprintf(w, "%s %s connection %s (%s)\n", verb, what, c.Name, c.Connector)
		for _, k := range slices.Sorted(maps.Keys(c.Config)) {
			fmt.Fprintf(w, "    config.%s = %s\n", k, c.Config[k])
		}
		fmt.Fprintf(w, "    allowed_paths: %s\n", strings.Join(c.AllowedPaths, " "))
		if len(c.AllowedRoles) > 0 {
			fmt.Fprintf(w, "    allowed_roles: %s\n", strings.Join(c.AllowedRoles, " "))
		}
	}
	for _, s := range m.Secrets {
		params := ""
		for _, k := range slices.Sorted(maps.Keys(s.To.Params)) {
			params += fmt.Sprintf(" %s=%s", k, s.To.Params[k])
		}
		fmt.Fprintf(w, "%s move %s: connector %s -> connection %s%s\n", verb, s.Path, s.From.LegacyConnector, s.To.Connection, params)
	}
	if !applied {
		_, err := fmt.Fprintln(w, "Run again with --apply to do it.")
		return err
	}
	return nil
}
