package action

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/passman-dev/passman/client"
	"github.com/passman-dev/passman/secret"
)

// Inputs of the post step, kept in $GITHUB_STATE (the runner hands them
// back as STATE_<name>). The token is masked before it is saved.
const (
	stateToken  = "passman_token"
	stateServer = "passman_server"
	stateCACert = "passman_cacert"
	stateDir    = "passman_dir"
)

// maxMappings bounds the secrets input.
const maxMappings = 256

// mapping is one line of the secrets input:
//
//	PATH [version=N | stage=S] > NAME
type mapping struct {
	path string
	sel  secret.Selector
	name string
}

// envName is compiled on first use, not at every passman command's
// start-up.
var envName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`) })

// parseMappings reads the secrets input; blank lines and lines starting
// with # are skipped. Errors name the line, which holds no value.
func parseMappings(in string) ([]mapping, error) {
	var out []mapping
	seen := map[string]bool{}
	for i, line := range strings.Split(in, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(out) == maxMappings {
			return nil, fmt.Errorf("input secrets: more than %d lines", maxMappings)
		}
		left, name, ok := strings.Cut(line, ">")
		name = strings.TrimSpace(name)
		if !ok || strings.Contains(name, ">") {
			return nil, fmt.Errorf("input secrets, line %d: want PATH [version=N|stage=S] > NAME", i+1)
		}
		if !envName().MatchString(name) || strings.HasPrefix(strings.ToUpper(name), "GITHUB_") || strings.HasPrefix(strings.ToUpper(name), "RUNNER_") {
			return nil, fmt.Errorf("input secrets, line %d: %q is not a usable variable name ([A-Za-z_][A-Za-z0-9_]*, not GITHUB_* or RUNNER_*)", i+1, name)
		}
		if seen[name] {
			return nil, fmt.Errorf("input secrets, line %d: %s is set twice", i+1, name)
		}
		seen[name] = true
		fields := strings.Fields(left)
		if len(fields) == 0 {
			return nil, fmt.Errorf("input secrets, line %d: no path", i+1)
		}
		m := mapping{name: name}
		if last := fields[len(fields)-1]; len(fields) > 1 {
			switch {
			case strings.HasPrefix(last, "version="):
				v, err := strconv.Atoi(strings.TrimPrefix(last, "version="))
				if err != nil || v < 1 {
					return nil, fmt.Errorf("input secrets, line %d: version must be a positive number", i+1)
				}
				m.sel.Version, fields = v, fields[:len(fields)-1]
			case strings.HasPrefix(last, "stage="):
				m.sel.Stage, fields = secret.Stage(strings.TrimPrefix(last, "stage=")), fields[:len(fields)-1]
			}
		}
		m.path = strings.Join(fields, " ")
		if err := secret.ValidatePath(m.path); err != nil {
			return nil, fmt.Errorf("input secrets, line %d: %w", i+1, err)
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, errors.New("input secrets is empty: one PATH > NAME a line")
	}
	return out, nil
}

var exportValues = []string{"env", "output", "file"}

func (r *run) exports() (map[string]bool, error) {
	in := r.input("export")
	if in == "" {
		in = "env"
	}
	out := map[string]bool{}
	for _, e := range strings.Split(in, ",") {
		e = strings.TrimSpace(e)
		if !contains(exportValues, e) {
			return nil, fmt.Errorf("input export %q: want a comma-separated list of %s", e, strings.Join(exportValues, ", "))
		}
		out[e] = true
	}
	return out, nil
}

// runSecrets delivers the secrets the input names. Each value is masked,
// every line and JSON leaf of it (maskForms), as soon as it arrives and
// before anything else is written; only then is anything exported.
func runSecrets(r *run) (int, error) {
	maps, err := parseMappings(r.input("secrets"))
	if err != nil {
		return ExitError, err
	}
	exp, err := r.exports()
	if err != nil {
		return ExitError, err
	}
	ev, err := readEvent(r.getenv("GITHUB_EVENT_NAME"), r.getenv("GITHUB_EVENT_PATH"))
	if err != nil {
		return ExitError, err
	}
	c, err := r.login(ev)
	if err != nil {
		return ExitError, err
	}
	if r.input("token") == "" {
		// The token is the action's own (an OIDC login): the post step
		// revokes it.
		for k, v := range map[string]string{stateToken: c.BearerToken(), stateServer: r.input("server"), stateCACert: r.input("ca-cert")} {
			if err := r.state.set(k, v); err != nil {
				return ExitError, err
			}
		}
	}
	values := make([][]byte, len(maps))
	defer func() {
		for _, v := range values {
			clear(v)
		}
	}()
	for i, m := range maps {
		v, err := c.Get(r.ctx, m.path, m.sel)
		if err != nil {
			return ExitError, fmt.Errorf("read %s (%s): %w", m.path, m.sel, err)
		}
		values[i] = bytes.Clone(v.Value.Reveal())
		v.Value.Wipe()
		for _, form := range maskForms(string(values[i])) {
			r.gh.AddMask(form)
		}
	}
	var dir string
	if exp["file"] {
		if dir, err = r.tempDir("passman-secrets-"); err != nil {
			return ExitError, err
		}
		if err := r.state.set(stateDir, dir); err != nil {
			return ExitError, err
		}
	}
	for i, m := range maps {
		v := string(values[i])
		if (exp["env"] || exp["output"]) && strings.ContainsRune(v, 0) {
			return ExitError, fmt.Errorf("%s holds a NUL byte, which an environment variable or output cannot carry: use export: file", m.path)
		}
		if exp["env"] {
			if err := r.envFile.set(m.name, v); err != nil {
				return ExitError, err
			}
		}
		if exp["output"] {
			if err := r.outputs.set(m.name, v); err != nil {
				return ExitError, err
			}
		}
		if exp["file"] {
			p := filepath.Join(dir, m.name)
			if err := os.WriteFile(p, values[i], 0o600); err != nil {
				return ExitError, fmt.Errorf("write %s: %w", m.name, err)
			}
			if err := r.envFile.set(m.name+"_FILE", p); err != nil {
				return ExitError, err
			}
		}
	}
	r.gh.Infof("passman secrets: delivered %d secrets (%s)", len(maps), strings.Join(sortedKeys(exp), ", "))
	return ExitOK, nil
}

// postSecrets revokes the token the run step obtained and removes the
// secret files: the token would otherwise stay valid until it expires,
// outliving the job (hashicorp/vault-action has no such step).
func postSecrets(r *run) error {
	var errs []error
	if dir := r.getenv("STATE_" + stateDir); dir != "" {
		if tmp := r.getenv("RUNNER_TEMP"); tmp == "" || strings.HasPrefix(filepath.Clean(dir), filepath.Clean(tmp)+string(os.PathSeparator)) {
			errs = append(errs, os.RemoveAll(dir))
		}
	}
	token := r.getenv("STATE_" + stateToken)
	if token == "" {
		return errors.Join(errs...)
	}
	r.gh.AddMask(token)
	c, err := client.New(client.Options{Addr: r.getenv("STATE_" + stateServer), CACertFile: r.getenv("STATE_" + stateCACert), Token: token})
	if err == nil {
		err = c.RevokeSelf(r.ctx)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("revoke the job's passman token: %w", err))
	} else {
		r.gh.Infof("passman: revoked the job's token")
	}
	return errors.Join(errs...)
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for _, k := range exportValues {
		if m[k] {
			out = append(out, k)
		}
	}
	return out
}
