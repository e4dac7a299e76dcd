package faults

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	if err := Validate(""); err != nil {
		t.Fatalf("empty fault refused: %v", err)
	}
	err := Validate(LoseOrders)
	if Compiled && err != nil {
		t.Fatalf("faults build refused %q: %v", LoseOrders, err)
	}
	if !Compiled && (err == nil || !strings.Contains(err.Error(), "without -tags faults")) {
		t.Fatalf("default build accepted a fault: %v", err)
	}
	if err := Validate("no-such-fault"); err == nil {
		t.Fatal("unknown fault accepted")
	}
}

func TestFromEnv(t *testing.T) {
	t.Setenv(EnvVar, LoseOrders)
	got := FromEnv()
	if Compiled && got != LoseOrders {
		t.Fatalf("faults build: FromEnv = %q, want %q", got, LoseOrders)
	}
	if !Compiled && got != "" {
		t.Fatalf("default build read the fault %q from the environment", got)
	}
}
