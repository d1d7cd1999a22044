package clibase

import (
	"fmt"
	"io"
	"runtime"

	"github.com/spf13/cobra"
)

// version is the release version. Release builds set it at link time:
//
//	go build -ldflags "-X github.com/passman-dev/passman/internal/clibase.version=v1.2.3" ./cmd/passman ./cmd/passman-full
//
// It is never changed at run time.
var version = "dev"

// versionInfo is passman version's JSON shape.
type versionInfo struct {
	Version string `json:"version"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

// NewVersionCmd is passman version.
func NewVersionCmd(s *State) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print passman's version",
		Args:  ExactArgs(),
		RunE: func(*cobra.Command, []string) error {
			v := versionInfo{Version: version, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
			return s.Out.Emit(v, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, versionLine())
				return err
			})
		},
	}
}

// versionLine is the text form of passman version.
func versionLine() string {
	return fmt.Sprintf("passman %s (%s %s/%s)", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// Version is the release version ("dev" in a development build).
func Version() string { return version }
