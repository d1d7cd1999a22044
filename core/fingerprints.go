package core

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/fpindex"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
)

// Audit actions of the fingerprint index.
const (
	ActionFingerprintExport  = "fingerprints.export"
	ActionFingerprintConfirm = "fingerprints.confirm"
)

// ExportFingerprints writes the local form of the fingerprint index (full
// fingerprints with each version's path and stages; see package fpindex)
// of every secret the caller may read, for a scan of this store in
// process. What may leave the process is ExportFingerprintPrefixes.
func (l *Local) ExportFingerprints(ctx context.Context, w io.Writer) (int, error) {
	f, err := l.exportFingerprints(ctx, "", true)
	if err != nil {
		return 0, err
	}
	defer clear(f.DetectionKey)
	return f.Exported, fpindex.Write(w, f)
}

// ExportFingerprintPrefixes writes the shareable form of the fingerprint
// index of the secrets under prefix that the caller may read: the
// detection key and truncated fingerprints, whose candidates the store
// confirms (ConfirmFingerprints). Values too weak to export are left out
// and counted.
func (l *Local) ExportFingerprintPrefixes(ctx context.Context, prefix string, w io.Writer) (fpindex.File, error) {
	f, err := l.exportFingerprints(ctx, prefix, false)
	if err != nil {
		return fpindex.File{}, err
	}
	err = fpindex.Write(w, f)
	clear(f.DetectionKey)
	if err != nil {
		return fpindex.File{}, err
	}
	f.DetectionKey = nil
	return f, nil
}

// exportFingerprints authorizes an export as a listing of prefix, then
// includes each secret only if the caller may read it: the policy decides
// on every secret, inside the store's read, before any of its values is
// decrypted for the strength rule. The export is audited before anything
// is written.
func (l *Local) exportFingerprints(ctx context.Context, prefix string, local bool) (fpindex.File, error) {
	o := op{action: ActionFingerprintExport, perm: policy.ActionList, path: prefix}
	dec, err := l.authorize(ctx, o)
	if err != nil {
		return fpindex.File{}, err
	}
	info, err := l.st.Info(ctx)
	b := fpindex.NewBuilder(info.ID, prefix, l.st.DetectionKey(), l.opts.now(), local)
	if err == nil {
		err = l.st.IndexEntries(ctx, prefix, func(path string, md *secret.Metadata) bool {
			return l.mayRead(ctx, path, md)
		}, func(e store.IndexEntry) error {
			b.Add(e.Value, e.Fingerprint, secret.FingerprintMatch{Path: e.Path, Version: e.Version, Stages: e.Stages, State: e.State})
			return nil
		})
	}
	f := b.File()
	form := "shareable"
	if local {
		form = "local"
	}
	e := audit.Entry{Action: ActionFingerprintExport, Decision: dec, Details: map[string]string{
		"exported": strconv.Itoa(f.Exported),
		"withheld": strconv.Itoa(f.Withheld),
		"form":     form,
	}}
	if prefix != "" {
		e.Details["prefix"] = prefix
	}
	if err := l.read(ctx, e, err); err != nil {
		return fpindex.File{}, err
	}
	return f, nil
}

// mayRead reports whether the caller may read path, whose metadata is md
// (nil: look it up). It audits nothing: a secret the caller may not read
// is left out of an answer silently, exactly as if it did not exist.
func (l *Local) mayRead(ctx context.Context, path string, md *secret.Metadata) bool {
	if md == nil {
		m, err := l.st.Metadata(ctx, path)
		if err != nil {
			return false
		}
		md = &m
	}
	_, err := l.decide(ctx, op{action: ActionGet, perm: policy.ActionRead, path: path, secret: true}, md)
	return err == nil
}

// readableMatches keeps the matches on paths the caller may read, asking
// the policy once per path.
func (l *Local) readableMatches(ctx context.Context, ms []secret.FingerprintMatch, seen map[string]bool) []secret.FingerprintMatch {
	var out []secret.FingerprintMatch
	for _, m := range ms {
		ok, asked := seen[m.Path]
		if !asked {
			ok = l.mayRead(ctx, m.Path, nil)
			seen[m.Path] = ok
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

// LookupFingerprint implements passman.Service. It needs list on the whole
// store, and answers only versions of secrets the caller may read: a
// fingerprint names its value to whoever can compute fingerprints of
// guesses (anyone who can write a secret and read its fingerprint back),
// so a match on a secret the caller may not read would confirm a guess of
// another's value. Such a match is left out silently.
func (l *Local) LookupFingerprint(ctx context.Context, fp string) ([]secret.FingerprintMatch, error) {
	dec, err := l.authorize(ctx, op{action: ActionLookup, perm: policy.ActionList})
	if err != nil {
		return nil, err
	}
	m, err := l.st.LookupFingerprint(ctx, fp)
	if err == nil {
		m = l.readableMatches(ctx, m, map[string]bool{})
	}
	e := audit.Entry{Action: ActionLookup, Details: map[string]string{"matches": strconv.Itoa(len(m))}, Decision: dec}
	if len(m) > 0 {
		e.Fingerprint = fp
	}
	if err := l.read(ctx, e, err); err != nil {
		return nil, err
	}
	return m, nil
}

// ConfirmFingerprints implements fpindex.Confirmer: of fps (at most
// fpindex.MaxConfirm, lowercase hex), it answers those that are values of
// versions the caller may read, with those versions. A fingerprint whose
// only versions the caller may not read is answered exactly as one that
// is no managed value. The call is audited as one entry with counts and
// no fingerprint.
func (l *Local) ConfirmFingerprints(ctx context.Context, fps []string) (fpindex.Confirmation, error) {
	c := fpindex.Confirmation{Matches: map[string][]secret.FingerprintMatch{}}
	err := validateFingerprints(fps)
	var info store.Info
	if err == nil {
		info, err = l.st.Info(ctx)
		c.StoreID = info.ID
	}
	seen := map[string]bool{}
	for _, fp := range fps {
		if err != nil {
			break
		}
		if _, done := c.Matches[fp]; done {
			continue
		}
		var m []secret.FingerprintMatch
		if m, err = l.st.LookupFingerprint(ctx, fp); err == nil {
			if m = l.readableMatches(ctx, m, seen); len(m) > 0 {
				c.Matches[fp] = m
			}
		}
	}
	e := audit.Entry{Action: ActionFingerprintConfirm, Details: map[string]string{
		"asked":     strconv.Itoa(len(fps)),
		"confirmed": strconv.Itoa(len(c.Matches)),
	}}
	if err := l.read(ctx, e, err); err != nil {
		return fpindex.Confirmation{}, err
	}
	return c, nil
}

func validateFingerprints(fps []string) error {
	if len(fps) > fpindex.MaxConfirm {
		return fmt.Errorf("%w: at most %d fingerprints may be confirmed at once", secret.ErrInvalidArgument, fpindex.MaxConfirm)
	}
	for _, fp := range fps {
		if b, err := hex.DecodeString(fp); err != nil || len(b) != 32 || hex.EncodeToString(b) != fp {
			return fmt.Errorf("%w: a fingerprint is 64 lowercase hex characters", secret.ErrInvalidArgument)
		}
	}
	return nil
}

var _ fpindex.Confirmer = (*Local)(nil)
