package generator

import (
	"errors"
	"strings"
	"testing"

	"github.com/passman-dev/passman/secret"
)

func TestGenerateHonoursSpec(t *testing.T) {
	t.Parallel()
	for name, spec := range map[string]Spec{
		"default":      {},
		"all classes":  {Length: 8, Classes: AllClasses},
		"digits only":  {Length: 12, Classes: []Class{Digits}},
		"long symbols": {Length: 4096, Classes: []Class{Symbols, Lower}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			norm, err := spec.Normalize()
			if err != nil {
				t.Fatal(err)
			}
			for range 50 {
				v, err := Generate(spec)
				if err != nil {
					t.Fatal(err)
				}
				if len(v) != norm.Length {
					t.Fatalf("length %d, want %d", len(v), norm.Length)
				}
				for _, c := range norm.Classes {
					if !strings.ContainsAny(string(v), alphabets[c]) {
						t.Fatalf("%q lacks class %s", v, c)
					}
				}
				if strings.Trim(string(v), norm.alphabet()) != "" {
					t.Fatalf("%q has characters outside the alphabet", v)
				}
			}
		})
	}
}

func TestGenerateIsRandom(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 1000 {
		v, err := Generate(Spec{Length: 8, Classes: []Class{Digits}})
		if err != nil {
			t.Fatal(err)
		}
		seen[string(v)] = true
	}
	// 10^8 possibilities: a repeat in 1000 draws has probability ~0.5%.
	if len(seen) < 995 {
		t.Fatalf("only %d distinct values in 1000 draws", len(seen))
	}
}

func TestSpecRejects(t *testing.T) {
	t.Parallel()
	for name, spec := range map[string]Spec{
		"too short":     {Length: 7},
		"too long":      {Length: MaxLength + 1},
		"unknown class": {Length: 10, Classes: []Class{"emoji"}},
		"duplicate":     {Length: 10, Classes: []Class{Digits, Digits}},
	} {
		if _, err := Generate(spec); !errors.Is(err, secret.ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want ErrInvalidArgument", name, err)
		}
	}
	if _, err := ParseClasses("upper,nope"); !errors.Is(err, secret.ErrInvalidArgument) {
		t.Errorf("ParseClasses accepted an unknown class: %v", err)
	}
	if got, err := ParseClasses(" upper, digits ,"); err != nil || len(got) != 2 {
		t.Errorf("ParseClasses = %v, %v", got, err)
	}
}

func TestEntropy(t *testing.T) {
	t.Parallel()
	got := Spec{Length: 10, Classes: []Class{Digits}}.EntropyBits()
	if got < 33.2 || got > 33.3 {
		t.Fatalf("entropy of 10 digits = %.2f bits, want 33.22", got)
	}
}
