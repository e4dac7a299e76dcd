package lb

import (
	"strings"
	"testing"
)

func TestValidateReportsEverything(t *testing.T) {
	c := DefaultConfig()
	c.Listen, c.Backends, c.CacheSize, c.MaxFrame, c.ProbeTimeout = "nope", []string{"foo"}, -1, 10, 0
	err := c.Validate()
	if err == nil {
		t.Fatal("a config with many problems passed")
	}
	for _, want := range []string{`listen "nope"`, `backend "foo": want host:port`, "cache size -1", "max frame 10", "probe timeout 0s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("no %q in:\n%v", want, err)
		}
	}
}
