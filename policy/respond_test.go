package policy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman/secret"
)

func leak(version int, state string, stages ...string) RespondInput {
	return RespondInput{
		Finding: map[string]any{"rule": "generic-api-key", "file": "config/app.env", "line": 3, "commit": "4f2c9e1"},
		Secret:  RespondSecret{Path: "prod/app/token", Version: version, Stages: stages, State: state},
	}
}

func TestRespond(t *testing.T) {
	t.Parallel()
	ignoredLeak := leak(4, "active", "current")
	ignoredLeak.Secret.Metadata = &secret.Metadata{Tags: map[string]string{"leak_response": "ignore"}}
	tests := []struct {
		name string
		dir  string
		in   RespondInput
		want []RespondAction
	}{
		{"current", "", leak(4, "active", "current"), []RespondAction{
			{RespondRotate, "v4 is the current value of prod/app/token"},
			{RespondRevokePrevious, "v4 stays usable as the previous version after rotation"},
			{RespondNotify, "the current value of prod/app/token (v4) leaked"},
		}},
		{"previous", "", leak(3, "active", "previous"), []RespondAction{
			{RespondNotify, "v3 of prod/app/token leaked; it is the previous version, not the live value"},
		}},
		{"pending", "", leak(5, "active", "pending"), []RespondAction{
			{RespondNotify, "v5 of prod/app/token leaked; it is the pending version, not the live value"},
		}},
		{"older", "", leak(1, "deleted"), []RespondAction{
			{RespondNotify, "v1 of prod/app/token leaked; it is an older version that is no longer staged, not the live value"},
		}},
		{"ignore tag", "", ignoredLeak, []RespondAction{
			{RespondIgnore, "prod/app/token is tagged leak_response=ignore"},
		}},
		{"user reasons merge", "testdata/respond", leak(2, "active", "previous"), []RespondAction{
			{RespondNotify, "security is told of every leak; v2 of prod/app/token leaked; it is the previous version, not the live value"},
		}},
		{"user rule respects ignore", "testdata/respond", ignoredLeak, []RespondAction{
			{RespondIgnore, "prod/app/token is tagged leak_response=ignore"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEngine(t, Options{Dir: tt.dir})
			got, err := e.Respond(context.Background(), tt.in)
			if err != nil {
				t.Fatal(err)
			}
			want := Response{Actions: tt.want, Revision: e.Revision()}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRespondBadPolicy(t *testing.T) {
	t.Parallel()
	tests := map[string]struct{ text, want string }{
		"unknown action": {"package passman.respond\n\nactions contains {\"action\": \"page\", \"reason\": \"wake someone\"} if true\n", `respond action "page" is unknown`},
		"no reason":      {"package passman.respond\n\nactions contains {\"action\": \"notify\"} if true\n", `has no "reason"`},
		"not an object":  {"package passman.respond\n\nactions contains \"rotate\" if true\n", "must hold objects"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"bad.rego": tt.text})
			e := newEngine(t, Options{Dir: dir})
			_, err := e.Respond(context.Background(), leak(1, "active", "current"))
			if !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want ErrInvalidPolicy containing %q", err, tt.want)
			}
		})
	}
}

func TestRespondInvalidInput(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	tests := []struct {
		name   string
		modify func(*RespondInput)
		want   string
	}{
		{"bad path", func(in *RespondInput) { in.Secret.Path = "/x" }, "must not start with '/'"},
		{"version 0", func(in *RespondInput) { in.Secret.Version = 0 }, "version 0"},
		{"unknown stage", func(in *RespondInput) { in.Secret.Stages = []string{"live"} }, `unknown stage "live"`},
		{"unknown state", func(in *RespondInput) { in.Secret.State = "gone" }, `state "gone"`},
		{"secret text in finding", func(in *RespondInput) { in.Finding["Secret"] = "hunter2" }, `"Secret" field`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := leak(1, "active", "current")
			tt.modify(&in)
			_, err := e.Respond(context.Background(), in)
			if !errors.Is(err, secret.ErrInvalidArgument) && !errors.Is(err, secret.ErrInvalidPath) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want an invalid argument containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error repeats the secret text: %v", err)
			}
		})
	}
}
