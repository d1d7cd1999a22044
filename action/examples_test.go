package action

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type actionYAML struct {
	Runs   map[string]string `yaml:"runs"`
	Inputs map[string]struct {
		Default string `yaml:"default"`
	} `yaml:"inputs"`
	Outputs map[string]any `yaml:"outputs"`
}

type workflowYAML struct {
	Jobs map[string]struct {
		Steps []struct {
			Uses string            `yaml:"uses"`
			With map[string]string `yaml:"with"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

// TestWorkflowsUseDeclaredInputs: the workflows users copy
// (examples/github) and the project's own CI give the action only inputs
// action.yml declares, each with a command it knows; action.yml runs a
// JavaScript action with a post step.
func TestWorkflowsUseDeclaredInputs(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../action.yml")
	if err != nil {
		t.Fatal(err)
	}
	var a actionYAML
	if err := yaml.Unmarshal(b, &a); err != nil {
		t.Fatalf("action.yml: %v", err)
	}
	runs := a
	if runs.Runs["using"] != "node24" || runs.Runs["post"] == "" || runs.Runs["main"] == "" {
		t.Fatalf("action.yml runs: %v", runs.Runs)
	}
	for _, f := range []string{runs.Runs["main"], runs.Runs["post"]} {
		if _, err := os.Stat(filepath.Join("..", f)); err != nil {
			t.Errorf("action.yml names %s: %v", f, err)
		}
	}
	files, _ := filepath.Glob("../examples/github/*.yml")
	ci, _ := filepath.Glob("../.github/workflows/*.yml")
	files = append(files, ci...)
	if len(files) < 4 {
		t.Fatalf("workflows: %v", files)
	}
	seen := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var w workflowYAML
		if err := yaml.Unmarshal(b, &w); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for job, j := range w.Jobs {
			for _, s := range j.Steps {
				if s.Uses != "./" && !strings.HasPrefix(s.Uses, "passman-dev/passman@") {
					continue
				}
				cmd := s.With["command"]
				if !slices.ContainsFunc(commands, func(c command) bool { return c.name == cmd }) {
					t.Errorf("%s job %s: command %q", f, job, cmd)
				}
				seen[cmd] = true
				for k := range s.With {
					if _, ok := a.Inputs[k]; !ok {
						t.Errorf("%s job %s: input %q is not in action.yml", f, job, k)
					}
				}
			}
		}
	}
	for _, c := range commands {
		if !seen[c.name] {
			t.Errorf("no workflow uses command %s", c.name)
		}
	}
}
