// Package examples_test keeps the shipped examples honest: the example
// manifest lints clean against the example policies, and the policies pass
// their own tests and the Rego linter.
package examples_test

import (
	"context"
	"testing"

	"github.com/passman-dev/passman/manifest"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/policy/regotool"
	"github.com/passman-dev/passman/policy/regotool/regal"
)

func TestExampleManifestLintsClean(t *testing.T) {
	ctx := context.Background()
	m, err := manifest.Load("passman.yaml")
	if err != nil {
		t.Fatal(err)
	}
	eng, err := policy.New(ctx, policy.Options{Dir: "policies"})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := manifest.Lint(ctx, eng, m)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Deny) != 0 || len(rep.Warn) != 0 {
		t.Fatalf("the example manifest does not lint clean: %+v", rep)
	}
}

func TestExamplePoliciesPassTheirTestsAndLint(t *testing.T) {
	ctx := context.Background()
	tr, err := regotool.Test(ctx, "policies", regotool.TestOptions{Bundled: policy.BundledModules()})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Passed == 0 || tr.Failed != 0 || tr.Errored != 0 {
		t.Fatalf("example policy tests: %d passed, %d failed, %d errored", tr.Passed, tr.Failed, tr.Errored)
	}
	lr, err := regal.Lint(ctx, "policies")
	if err != nil {
		t.Fatal(err)
	}
	if len(lr.Violations) != 0 {
		t.Fatalf("example policies have lint findings: %+v", lr.Violations)
	}
}
