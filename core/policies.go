package core

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
)

// Audit actions of stored policy modules.
const (
	ActionPolicyPut    = "policy.put"
	ActionPolicyGet    = "policy.get"
	ActionPolicyList   = "policy.list"
	ActionPolicyDelete = "policy.delete"
)

// Store metadata records of policy modules: one record per module (a
// module may be up to 1 MiB, and a clustered backend bounds a value's
// size), and the generation, a counter every change increments in the
// change's transaction. A process compares the generation with the one its
// engine holds to know, with one small read, whether another process
// (another server sharing the store) changed the set.
const (
	policyMetaPrefix     = "policy/"
	policyGenerationMeta = "policy-generation"
)

// DefaultPolicyCheckInterval is how often, at most, authorization reads
// the store's policy generation when Options.PolicyCheckInterval is 0.
const DefaultPolicyCheckInterval = time.Second

func (o Options) policyCheckInterval() time.Duration {
	if o.PolicyCheckInterval == 0 {
		return DefaultPolicyCheckInterval
	}
	return o.PolicyCheckInterval
}

// storedPolicyEngine is an Authorizer that compiles the store's policy
// modules: *policy.Engine.
type storedPolicyEngine interface {
	Prepare(ctx context.Context, gen uint64, mods []secret.PolicyModule) (*policy.Candidate, error)
	Install(c *policy.Candidate) bool
	InstallBroken(ctx context.Context, gen uint64, cause error) error
	Generation() uint64
}

// policyState is Local's state for the stored policy modules.
type policyState struct {
	// change serialises this process's changes to the set: each compiles
	// and tests the set it read, and commits only if the generation is
	// still the one it read.
	change sync.Mutex
	// refresh is held by the one caller reloading the set; others go on
	// deciding with the set in force meanwhile.
	refresh sync.Mutex
	epoch   time.Time
	// lastCheck is when (since epoch) the generation was last read.
	lastCheck atomic.Int64
	// failed is a generation that did not compile here: not retried.
	failed atomic.Uint64
}

// loadPolicies gives the engine the store's modules when the process
// opens the store. A set that does not compile here (written by another
// passman version, whose bundled policies differed) leaves the bundled
// base alone deciding (policy.Engine.InstallBroken): dropping the stored
// modules and keeping the rest could drop a deny rule that a directory's
// allow rule relied on, so only the store's creator may act until an
// administrator repairs the set.
func (l *Local) loadPolicies(ctx context.Context) error {
	l.pol.epoch = time.Now()
	eng, ok := l.authz.(storedPolicyEngine)
	if !ok {
		return nil
	}
	gen, mods, err := l.readPolicies(ctx)
	if err != nil || gen == 0 {
		return err
	}
	c, err := eng.Prepare(ctx, gen, mods)
	if err != nil {
		return eng.InstallBroken(ctx, gen, err)
	}
	eng.Install(c)
	return nil
}

// refreshPolicies reloads the store's modules when their generation moved
// since the engine's set was built, checking at most once per
// Options.PolicyCheckInterval. A generation that does not compile here
// leaves the set in force deciding and is not tried again. It must not
// run inside a store transaction.
func (l *Local) refreshPolicies(ctx context.Context) {
	eng, ok := l.authz.(storedPolicyEngine)
	if !ok {
		return
	}
	now := int64(time.Since(l.pol.epoch))
	if every := l.opts.policyCheckInterval(); every > 0 && now-l.pol.lastCheck.Load() < int64(every) {
		return
	}
	if !l.pol.refresh.TryLock() {
		return
	}
	defer l.pol.refresh.Unlock()
	l.pol.lastCheck.Store(now)
	var gen uint64
	err := l.db.View(ctx, func(tx store.Tx) error {
		var err error
		gen, err = readPolicyGeneration(tx)
		return err
	})
	if err != nil || gen == eng.Generation() || gen == l.pol.failed.Load() {
		// A read that failed is tried again at the next check; the
		// operation itself will meet the store's failure.
		return
	}
	gen, mods, err := l.readPolicies(ctx)
	if err != nil {
		return
	}
	c, err := eng.Prepare(ctx, gen, mods)
	if err != nil {
		l.pol.failed.Store(gen)
		return
	}
	eng.Install(c)
}

// PutPolicy implements passman.Policies: it creates or replaces the stored
// module name. Only an administrator may: a module decides who may do
// what, so an administrator can grant anything with one, as with a token.
// Before it takes effect the whole set (bundled, policy directory, every
// stored module with this one) is compiled strictly and its tests run; a
// set that fails is refused with the compiler's file:line:col (the module
// is store:<name>.rego) or the failing tests' names, and the set in force
// stays. Putting the source a module already has changes nothing (no new
// version). The audit entry names the module, its version and its
// source's SHA-256, never the source.
func (l *Local) PutPolicy(ctx context.Context, name, source string) (secret.PolicyModule, error) {
	o := op{action: ActionPolicyPut, perm: policy.ActionAdmin, details: map[string]string{}}
	if err := secret.ValidatePolicyName(name); err != nil {
		return secret.PolicyModule{}, l.deny(ctx, o, nil, err)
	}
	o.details["policy"] = name
	dec, err := l.authorize(ctx, o)
	if err != nil {
		return secret.PolicyModule{}, err
	}
	if len(source) > secret.MaxPolicySource {
		return secret.PolicyModule{}, l.deny(ctx, o, dec, fmt.Errorf("%w: policy source is %d bytes, at most %d (1 MiB) allowed", secret.ErrTooLarge, len(source), secret.MaxPolicySource))
	}
	sum := sha256.Sum256([]byte(source))
	o.details["sha256"] = hex.EncodeToString(sum[:])
	now, who := l.opts.now().UTC(), l.subject(ctx).ID
	var out secret.PolicyModule
	err = l.changePolicies(ctx, o, dec, func(mods map[string]secret.PolicyModule) (bool, error) {
		old, exists := mods[name]
		if exists && old.SHA256 == o.details["sha256"] {
			out = old
			o.details["version"] = strconv.Itoa(old.Version)
			return false, nil
		}
		if !exists && len(mods) >= secret.MaxPolicies {
			return false, fmt.Errorf("%w: a store holds at most %d policy modules", secret.ErrInvalidArgument, secret.MaxPolicies)
		}
		next := secret.PolicyModule{Name: name, Source: source, Version: old.Version + 1, SHA256: o.details["sha256"],
			CreatedAt: now, CreatedBy: who, UpdatedAt: now, UpdatedBy: who}
		if exists {
			next.CreatedAt, next.CreatedBy = old.CreatedAt, old.CreatedBy
		}
		mods[name] = next
		out = next
		o.details["version"] = strconv.Itoa(next.Version)
		return true, nil
	})
	return out, err
}

// DeletePolicy implements passman.Policies: it removes a stored module,
// after the set without it compiled and passed its tests (a test module
// may be deleted; a module another one or a test relies on may not).
func (l *Local) DeletePolicy(ctx context.Context, name string) error {
	o := op{action: ActionPolicyDelete, perm: policy.ActionAdmin, details: map[string]string{}}
	if err := secret.ValidatePolicyName(name); err != nil {
		return l.deny(ctx, o, nil, err)
	}
	o.details["policy"] = name
	dec, err := l.authorize(ctx, o)
	if err != nil {
		return err
	}
	return l.changePolicies(ctx, o, dec, func(mods map[string]secret.PolicyModule) (bool, error) {
		old, ok := mods[name]
		if !ok {
			return false, fmt.Errorf("%w: no policy module %s", secret.ErrNotFound, name)
		}
		o.details["version"], o.details["sha256"] = strconv.Itoa(old.Version), old.SHA256
		delete(mods, name)
		return true, nil
	})
}

// changePolicies applies edit to the stored set, authorized by dec: edit
// changes the map of modules and says whether it changed anything. A
// change is compiled and tested (Prepare, Candidate.Test), then committed
// with its audit entry only if the store's generation is still the one
// read, and then installed in this process's engine; other processes see
// the new generation at their next check. A refusal is audited.
func (l *Local) changePolicies(ctx context.Context, o op, dec *audit.Decision, edit func(map[string]secret.PolicyModule) (bool, error)) error {
	eng, ok := l.authz.(storedPolicyEngine)
	if !ok {
		return l.deny(ctx, o, dec, errNoPolicyEngine)
	}
	l.pol.change.Lock()
	defer l.pol.change.Unlock()
	gen, list, err := l.readPolicies(ctx)
	if err != nil {
		return l.deny(ctx, o, dec, err)
	}
	mods := make(map[string]secret.PolicyModule, len(list)+1)
	for _, m := range list {
		mods[m.Name] = m
	}
	changed, err := edit(mods)
	switch {
	case err != nil:
		return l.deny(ctx, o, dec, err)
	case !changed:
		d := maps.Clone(o.details)
		d["unchanged"] = "true"
		return l.read(ctx, audit.Entry{Action: o.action, Decision: dec, Details: d}, nil)
	}
	next := slices.SortedFunc(maps.Values(mods), func(a, b secret.PolicyModule) int { return strings.Compare(a.Name, b.Name) })
	c, err := eng.Prepare(ctx, gen+1, next)
	if err == nil {
		err = c.Test(ctx)
	}
	if err != nil {
		return l.deny(ctx, o, dec, err)
	}
	name := o.details["policy"]
	return l.commitRecords(ctx, o, dec, func(tx store.Tx) error {
		cur, err := readPolicyGeneration(tx)
		if err != nil {
			return err
		}
		if cur != gen {
			return fmt.Errorf("%w: the store's policy modules changed while this change was checked (another server?); try again", secret.ErrConflict)
		}
		if m, ok := mods[name]; ok {
			b, err := json.Marshal(m)
			if err != nil {
				return fmt.Errorf("encode policy module: %w", err)
			}
			if err := store.PutMeta(tx, policyMetaPrefix+name, b); err != nil {
				return fmt.Errorf("write policy module: %w", err)
			}
		} else if err := store.DeleteMeta(tx, policyMetaPrefix+name); err != nil {
			return fmt.Errorf("delete policy module: %w", err)
		}
		if err := store.PutMeta(tx, policyGenerationMeta, []byte(strconv.FormatUint(gen+1, 10))); err != nil {
			return fmt.Errorf("write policy generation: %w", err)
		}
		return nil
	}, func() { eng.Install(c) })
}

// GetPolicy implements passman.Policies: one stored module, with its
// source (admin).
func (l *Local) GetPolicy(ctx context.Context, name string) (secret.PolicyModule, error) {
	o := op{action: ActionPolicyGet, perm: policy.ActionAdmin, details: map[string]string{}}
	if err := secret.ValidatePolicyName(name); err != nil {
		return secret.PolicyModule{}, l.deny(ctx, o, nil, err)
	}
	o.details["policy"] = name
	dec, err := l.authorize(ctx, o)
	if err != nil {
		return secret.PolicyModule{}, err
	}
	var m secret.PolicyModule
	err = l.db.View(ctx, func(tx store.Tx) error {
		b, err := store.MetaTx(tx, policyMetaPrefix+name)
		switch {
		case err != nil:
			return fmt.Errorf("read policy module: %w", err)
		case b == nil:
			return fmt.Errorf("%w: no policy module %s", secret.ErrNotFound, name)
		}
		m, err = decodePolicy(name, b)
		return err
	})
	if err := l.read(ctx, audit.Entry{Action: o.action, Decision: dec, Details: o.details}, err); err != nil {
		return secret.PolicyModule{}, err
	}
	return m, nil
}

// ListPolicies implements passman.Policies: every stored module, sorted by
// name, without sources (admin).
func (l *Local) ListPolicies(ctx context.Context) ([]secret.PolicyModule, error) {
	dec, err := l.authorize(ctx, op{action: ActionPolicyList, perm: policy.ActionAdmin})
	if err != nil {
		return nil, err
	}
	_, mods, err := l.readPolicies(ctx)
	if err := l.read(ctx, audit.Entry{Action: ActionPolicyList, Decision: dec, Details: map[string]string{"count": strconv.Itoa(len(mods))}}, err); err != nil {
		return nil, err
	}
	for i := range mods {
		mods[i].Source = ""
	}
	return mods, nil
}

// readPolicies reads the generation and every module, sorted by name, in
// one transaction.
func (l *Local) readPolicies(ctx context.Context) (uint64, []secret.PolicyModule, error) {
	var gen uint64
	var mods []secret.PolicyModule
	err := l.db.View(ctx, func(tx store.Tx) error {
		var err error
		if gen, err = readPolicyGeneration(tx); err != nil {
			return err
		}
		return store.ScanMeta(tx, policyMetaPrefix, func(key string, b []byte) (bool, error) {
			m, err := decodePolicy(strings.TrimPrefix(key, policyMetaPrefix), b)
			mods = append(mods, m)
			return err == nil, err
		})
	})
	if err != nil {
		return 0, nil, err
	}
	return gen, mods, nil
}

func decodePolicy(name string, b []byte) (secret.PolicyModule, error) {
	var m secret.PolicyModule
	if err := json.Unmarshal(b, &m); err != nil || m.Name != name {
		return m, fmt.Errorf("%w: policy module record %s", secret.ErrCorrupt, name)
	}
	return m, nil
}

func readPolicyGeneration(tx store.Tx) (uint64, error) {
	b, err := store.MetaTx(tx, policyGenerationMeta)
	if err != nil {
		return 0, fmt.Errorf("read policy generation: %w", err)
	}
	if b == nil {
		return 0, nil
	}
	gen, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: policy generation record", secret.ErrCorrupt)
	}
	return gen, nil
}
