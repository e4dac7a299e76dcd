package chaos

import (
	"context"
	"strings"
	"testing"

	"orderly/chaos/failpoint"
)

// Options a run cannot use are refused before anything starts.
func TestRunRefusesBadOptions(t *testing.T) {
	cases := []struct {
		opt  Options
		want string
	}{
		{Options{Load: "bogus"}, `load "bogus"`},
		{Options{HighClients: -5}, "high clients -5"},
		{Options{Clients: -1}, "clients -1"},
		{Options{Docker: true, Nemeses: []string{failpoint.DiskFull}}, "nemesis disk-full"},
	}
	for _, tc := range cases {
		tc.opt.ReportDir = t.TempDir()
		if _, err := Run(context.Background(), tc.opt); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.opt, err, tc.want)
		}
	}
}
