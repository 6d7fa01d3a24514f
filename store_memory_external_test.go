package passwordless_test

import (
	"testing"
	"time"

	"github.com/go-passwordless/passwordless"
	"github.com/go-passwordless/passwordless/storetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, now func() time.Time) passwordless.Store {
		return passwordless.NewMemoryStore(now)
	})
}
