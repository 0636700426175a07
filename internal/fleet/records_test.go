package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestFleetSealedRecords(t *testing.T) {
	ep := startEtcd(t)
	m := join(t, ep, "gw1", 0)
	ctx := ctxT(t, 30*time.Second)
	l, err := m.Campaign(ctx, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	secret := "IKE-SA-SECRET-KEY-MATERIAL-0123456789"
	put := map[string][]byte{}
	// More than one transaction's worth, to cross the chunking.
	for i := range 250 {
		put[fmt.Sprintf("ike/%04d", i)] = []byte(fmt.Sprintf("%s-%d", secret, i))
	}
	if err := l.Save(ctx, put, nil); err != nil {
		t.Fatal(err)
	}
	got, err := m.Load(ctx, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(put) {
		t.Fatalf("loaded %d records, saved %d", len(got), len(put))
	}
	for k, v := range put {
		if !bytes.Equal(got[k], v) {
			t.Fatalf("record %s: got %q want %q", k, got[k], v)
		}
	}
	// Another member reads them too (same fleet key).
	m2 := join(t, ep, "gw2", 0)
	if got2, err := m2.Load(ctx, "192.0.2.1"); err != nil || len(got2) != len(put) {
		t.Fatalf("gw2 loaded %d records: %v", len(got2), err)
	}
	// Deletes, and a put and delete of one name in one Save.
	if err := l.Save(ctx, map[string][]byte{"ike/0000": []byte("new")}, []string{"ike/0001", "ike/0000"}); err != nil {
		t.Fatal(err)
	}
	got, _ = m.Load(ctx, "192.0.2.1")
	if _, ok := got["ike/0001"]; ok || string(got["ike/0000"]) != "new" {
		t.Fatalf("after delete: ike/0001 present=%v ike/0000=%q", ok, got["ike/0000"])
	}

	// What etcd holds: never the plaintext, not even a part of it.
	raw := rawClient(t, ep)
	resp, err := raw.Get(ctx, "/xdpsec/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	records := 0
	for _, kv := range resp.Kvs {
		if !strings.HasPrefix(string(kv.Key), "/xdpsec/sa/") {
			continue
		}
		records++
		if bytes.Contains(kv.Value, []byte("SECRET")) || bytes.Contains(kv.Value, []byte("KEY-MATERIAL")) {
			t.Fatalf("record %s is in clear in etcd: %q", kv.Key, kv.Value)
		}
	}
	if records != len(put)-1 {
		t.Fatalf("%d records in etcd, want %d", records, len(put)-1)
	}

	// A changed value, a value moved to another key and a value sealed
	// under another fleet key are all refused, each naming its key.
	key2 := "/xdpsec/sa/192.0.2.1/ike/0002"
	v, err := raw.Get(ctx, key2)
	if err != nil || len(v.Kvs) != 1 {
		t.Fatalf("raw get: %v", err)
	}
	tampered := append([]byte(nil), v.Kvs[0].Value...)
	tampered[len(tampered)-20] ^= 1
	mustPut(t, raw, key2, tampered)
	mustPut(t, raw, "/xdpsec/sa/192.0.2.1/moved", v.Kvs[0].Value)
	mustPut(t, raw, "/xdpsec/sa/192.0.2.1/short", []byte{1, 2, 3})
	other, _ := newSealer(bytes.Repeat([]byte{7}, 32))
	foreign, _ := other.seal("/xdpsec/sa/192.0.2.1/foreign", []byte("x"))
	mustPut(t, raw, "/xdpsec/sa/192.0.2.1/foreign", foreign)
	got, err = m.Load(ctx, "192.0.2.1")
	if err == nil || !errors.Is(err, ErrUnsealed) {
		t.Fatalf("tampered records loaded without ErrUnsealed: %v", err)
	}
	for _, name := range []string{"ike/0002", "moved", "short", "foreign"} {
		if !strings.Contains(err.Error(), "/xdpsec/sa/192.0.2.1/"+name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
		if _, ok := got[name]; ok {
			t.Errorf("refused record %s returned", name)
		}
	}
	if len(got) != len(put)-2 {
		t.Errorf("%d good records returned beside the error, want %d", len(got), len(put)-2)
	}
}

func rawClient(t *testing.T, ep string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func mustPut(t *testing.T, c *clientv3.Client, k string, v []byte) {
	t.Helper()
	if _, err := c.Put(context.Background(), k, string(v)); err != nil {
		t.Fatal(err)
	}
}
