package cli

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/client"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/clibase"
	"github.com/passman-dev/passman/secret"
)

// tokenAdmin is what the token commands need: token administration and a
// description of the token in PASSMAN_TOKEN. *client.Client has both;
// localTokens gives the second to a local store.
type tokenAdmin interface {
	passman.Tokens
	LookupSelf(ctx context.Context) (secret.TokenInfo, error)
}

// localTokens administers the tokens of a local store, as its OS user.
type localTokens struct {
	*core.Local
	// token is PASSMAN_TOKEN, for lookup.
	token string
}

var (
	_ tokenAdmin = localTokens{}
	_ tokenAdmin = (*client.Client)(nil)
)

func (t localTokens) LookupSelf(ctx context.Context) (secret.TokenInfo, error) {
	if t.token == "" {
		return secret.TokenInfo{}, clibase.UsageErrorf("%s is not set: token lookup describes the token in it", envToken)
	}
	return t.LookupToken(ctx, t.token)
}

// withTokens runs fn with the server's token administration when a server
// address is set, else the local store's.
func (a *app) withTokens(ctx context.Context, fn func(tokenAdmin) error) error {
	if a.remoteAddr() != "" {
		c, err := a.remoteClient()
		if err != nil {
			return err
		}
		return fn(c)
	}
	return a.withLocal(ctx, func(l *core.Local, _ config) error {
		return fn(localTokens{Local: l, token: a.Env.Var(envToken)})
	})
}

func newTokenCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, revoke and inspect the bearer tokens a server accepts",
		Long: `Bearer tokens authenticate clients of 'passman server'. A token acts as its
identity, with its claims, in policy (input.subject: kind "token") and in the
audit log. Creating, revoking and listing tokens are admin actions.

The commands work on the server when --addr or PASSMAN_ADDR is set, and on
the local store otherwise (while no server has it open). A token is shown
once, when it is created; passman keeps only its SHA-256 hash. Tokens are
named by their accessor, which is safe to log.`,
		Args: clibase.GroupArgs,
		RunE: clibase.GroupRun,
	}
	cmd.AddCommand(newTokenCreateCmd(a), newTokenRevokeCmd(a), newTokenLookupCmd(a), newTokenListCmd(a))
	return cmd
}

func newTokenCreateCmd(a *app) *cobra.Command {
	var identity, ttl string
	var claims []string
	cmd := &cobra.Command{
		Use:   "create --identity ID [--claim KEY=VALUE]... [--ttl DURATION]",
		Short: "Create a token and print it (once)",
		Long: `Create a bearer token for an identity. In text output the token alone goes
to standard output, so TOKEN=$(passman token create ...) captures it; what
it is goes to standard error.`,
		Example: `  passman token create --identity ci --claim role=deploy --ttl 720h`,
		Args:    clibase.ExactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if identity == "" {
				return clibase.UsageErrorf("--identity is required")
			}
			req := secret.TokenRequest{Identity: identity}
			d, err := secret.ParseDuration(ttl)
			if err != nil {
				return clibase.UsageErrorf("--ttl: want a duration such as 1h, 720h or 30d, or 0 for a token that never expires")
			}
			req.TTL = time.Duration(d)
			for _, c := range claims {
				k, v, ok := strings.Cut(c, "=")
				if !ok || k == "" {
					return clibase.UsageErrorf("--claim: want KEY=VALUE")
				}
				if req.Claims == nil {
					req.Claims = map[string]string{}
				}
				req.Claims[k] = v
			}
			var res api.TokenCreateResponse
			err = a.withTokens(cmd.Context(), func(t tokenAdmin) error {
				res.Token, res.Info, err = t.CreateToken(cmd.Context(), req)
				return err
			})
			if err != nil {
				return fmt.Errorf("create token: %w", err)
			}
			return a.Out.Emit(res, func(w io.Writer) error {
				if _, err := fmt.Fprintln(w, res.Token); err != nil {
					return err
				}
				_, err := fmt.Fprintf(a.Env.Stderr, "Created a token for %s (accessor %s, %s). It is shown only this once.\n", res.Info.Identity, res.Info.Accessor, expiryText(res.Info))
				return err
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&identity, "identity", "", "`ID` the token acts as (required)")
	fs.StringArrayVar(&claims, "claim", nil, "claim `KEY=VALUE` for policy (input.subject.claims); repeatable")
	fs.StringVar(&ttl, "ttl", "24h", "lifetime `DURATION` (1h, 30d); 0 never expires")
	return cmd
}

func newTokenRevokeCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ACCESSOR",
		Short: "Revoke a token; it stops working at once",
		Args:  clibase.ExactArgs("ACCESSOR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := a.withTokens(cmd.Context(), func(t tokenAdmin) error {
				return t.RevokeToken(cmd.Context(), args[0])
			})
			if err != nil {
				return fmt.Errorf("revoke token: %w", err)
			}
			return a.Out.Emit(map[string]string{"revoked": args[0]}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Revoked token %s.\n", args[0])
				return err
			})
		},
	}
}

func newTokenLookupCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "lookup",
		Short: "Describe the token in " + envToken,
		Args:  clibase.ExactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var info secret.TokenInfo
			err := a.withTokens(cmd.Context(), func(t tokenAdmin) error {
				var err error
				info, err = t.LookupSelf(cmd.Context())
				return err
			})
			if err != nil {
				return fmt.Errorf("look up token: %w", err)
			}
			return a.Out.Emit(info, func(w io.Writer) error {
				t := newTable(w, "accessor:", info.Accessor)
				t.row("identity:", info.Identity)
				for _, k := range slices.Sorted(maps.Keys(info.Claims)) {
					t.row("claim:", k+"="+info.Claims[k])
				}
				t.row("created:", timeText(info.CreatedAt)+" by "+info.CreatedBy)
				t.row("expires:", expiryText(info))
				return t.flush()
			})
		},
	}
}

func newTokenListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List every token (accessors, never tokens)",
		Args:  clibase.ExactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var infos []secret.TokenInfo
			err := a.withTokens(cmd.Context(), func(t tokenAdmin) error {
				var err error
				infos, err = t.ListTokens(cmd.Context())
				return err
			})
			if err != nil {
				return fmt.Errorf("list tokens: %w", err)
			}
			if infos == nil {
				infos = []secret.TokenInfo{}
			}
			return a.Out.Emit(infos, func(w io.Writer) error {
				t := newTable(w, "ACCESSOR", "IDENTITY", "CREATED", "EXPIRES", "REVOKED")
				for _, i := range infos {
					revoked := ""
					if !i.RevokedAt.IsZero() {
						revoked = timeText(i.RevokedAt)
					}
					t.row(i.Accessor, i.Identity, timeText(i.CreatedAt), expiryText(i), revoked)
				}
				return t.flush()
			})
		},
	}
}

func expiryText(i secret.TokenInfo) string {
	if i.ExpiresAt.IsZero() {
		return "never expires"
	}
	return "expires " + timeText(i.ExpiresAt)
}
