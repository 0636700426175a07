package e2e

import (
	"fmt"
	"os"
	"testing"

	"github.com/xdpsec/xdpsec/internal/vm"
)

func TestMain(m *testing.M) {
	if os.Getenv(vm.GuestEnv) != "1" {
		fmt.Printf("e2e: skipped: these tests run inside the VM guest (%s=1); run `make vmtest`\n", vm.GuestEnv)
		os.Exit(0)
	}
	os.Exit(m.Run())
}
