package core

import (
	"context"
	"io"
	"strconv"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/fpindex"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/store"
)

// ActionFingerprintExport is the audit action of ExportFingerprints.
const ActionFingerprintExport = "fingerprints.export"

// ExportFingerprints writes the fingerprint index — the detection key and
// every live version's fingerprint, path, stages and length, no value — for
// a scanner that has no store (see package fpindex for what holding it
// allows). It is an admin operation; the export is audited before anything
// is written to w.
func (l *Local) ExportFingerprints(ctx context.Context, w io.Writer) (int, error) {
	dec, err := l.authorize(ctx, op{action: ActionFingerprintExport, perm: policy.ActionAdmin})
	if err != nil {
		return 0, err
	}
	info, err := l.st.Info(ctx)
	f := fpindex.File{StoreID: info.ID, CreatedAt: l.opts.now().UTC(), DetectionKey: l.st.DetectionKey().Bytes()}
	if err == nil {
		err = l.st.IndexEntries(ctx, func(e store.IndexEntry) error {
			f.Entries = append(f.Entries, fpindex.Entry{Fingerprint: e.Fingerprint, Path: e.Path, Version: e.Version, Stages: e.Stages, State: e.State, Length: e.Length})
			return nil
		})
	}
	e := audit.Entry{Action: ActionFingerprintExport, Details: map[string]string{"entries": strconv.Itoa(len(f.Entries))}, Decision: dec}
	if err := l.read(ctx, e, err); err != nil {
		return 0, err
	}
	return len(f.Entries), fpindex.Write(w, f)
}
