package procio

import (
	"os"
	"testing"
)

// A write to a file shows as one more write system call.
func TestSyscallsCountAWrite(t *testing.T) {
	_, before, ok := Syscalls()
	if !ok {
		t.Skip("no /proc/self/io here (not Linux)")
	}
	f, err := os.Create(t.TempDir() + "/x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, after, _ := Syscalls(); after <= before {
		t.Fatalf("writes %d before, %d after a write", before, after)
	}
}
