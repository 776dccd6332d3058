package sqlite_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store/sqlite"
	"github.com/entente-cti/entente/internal/store/storetest"
)

const crashChildEnv = "ENTENTE_SQLITE_CRASH_CHILD"

// TestCrashDurability kills (SIGKILL) a process that is adding objects
// and checks that every addition it acknowledged is in the database
// after reopening it.
func TestCrashDurability(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashDurability$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const batch, kill = 50, 40
	acked := -1
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		n, ok := strings.CutPrefix(sc.Text(), "ack ")
		if !ok {
			continue
		}
		if acked, err = strconv.Atoi(n); err != nil {
			t.Fatal(err)
		}
		if acked == kill {
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if acked < kill {
		t.Fatalf("child acknowledged only %d batches before ending", acked)
	}

	s := open(t, dir)
	defer s.Close()
	seen := map[string]bool{}
	q := entente.ObjectQuery{Collection: "crash", MetadataOnly: true, Limit: 1000}
	for {
		p, err := s.QueryObjects(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Entries {
			seen[e.ID] = true
		}
		if !p.More {
			break
		}
		q.Next = p.Next
	}
	for i := range (acked + 1) * batch {
		if id := storetest.GenIndicator(i, time.Time{}).ID; !seen[id] {
			t.Errorf("acknowledged object %s is missing after the crash", id)
		}
	}
	t.Logf("%d batches acknowledged, %d objects found after SIGKILL", acked+1, len(seen))
}

// crashChild adds batches of objects forever, printing "ack N" after
// batch N is acknowledged, until it is killed.
func crashChild(dir string) {
	ctx := context.Background()
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(1)
	}
	s, err := sqlite.Open(ctx, dir)
	if err != nil {
		fail(err)
	}
	if err := s.CreateCollection(ctx, entente.Collection{ID: "crash", Title: "Crash"}); err != nil {
		fail(err)
	}
	at := time.Now().UTC()
	objs := make([]*stix.Object, 50)
	for n := 0; ; n++ {
		for i := range objs {
			objs[i] = storetest.GenIndicator(n*len(objs)+i, at)
		}
		if _, err := s.AddObjects(ctx, "crash", objs); err != nil {
			fail(err)
		}
		fmt.Printf("ack %d\n", n)
	}
}
