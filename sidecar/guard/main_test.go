package guard

import (
	"testing"

	"github.com/agent-sidecar/sidecar/internal/testutil"
)

func TestMain(m *testing.M) { testutil.MainWithoutLeaks(m) }
