package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/entente-cti/entente/internal/devicenode"
	"github.com/entente-cti/entente/internal/geo"
	"github.com/entente-cti/entente/internal/node"
)

// deviceSaveEvery is how often a serving node writes its device profiles
// back (they are written at shutdown too).
const deviceSaveEvery = 5 * time.Minute

// startDeviceWatch gives a serving node its device watch when one is
// configured: the configuration file given (--devices-config) or
// DATA/devices.toml, the same file `entente watch --data DATA` reads.
// The profiles (DATA/devices.profiles) and the pseudonym key
// (DATA/devices.key) are those of the offline commands too. It returns a
// function that stops the periodic saving and saves a last time; nothing
// is started (and stop does nothing) without a configuration.
func startDeviceWatch(ctx context.Context, env *Env, svc *node.Service, data, configFile string, loc geo.Locator, identity string, logger *slog.Logger) (stop func(), err error) {
	files := deviceFiles{data: data, config: configFile}
	files.resolve()
	if files.config == "" {
		return func() {}, nil
	}
	if data == "" {
		return nil, usagef("the device watch keeps its profiles in the data directory: give --data")
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, fmt.Errorf("device watch: %w", err)
	}
	cfg, err := files.loadConfig()
	if err != nil {
		return nil, err
	}
	key, err := files.loadKey(env)
	if err != nil {
		return nil, err
	}
	w, err := devicenode.New(devicenode.Options{Config: *cfg, Geo: loc, Key: key, Identity: identity})
	if err != nil {
		return nil, err
	}
	if b, err := os.ReadFile(files.profiles); err == nil {
		if err := w.Load(b); err != nil {
			return nil, fmt.Errorf("%s: %w", files.profiles, err)
		}
	} else if !os.IsNotExist(err) {
		return nil, fmt.Errorf("device profiles: %w", err)
	}
	svc.SetDevices(w)
	logger.Info("device watch", "config", files.config, "profiles", files.profiles, "devices", len(w.Devices("")), "classes", len(cfg.Classes))
	save := func(always bool) {
		b, changed := w.Save()
		if !changed && !always {
			return
		}
		if err := writeFileAtomic(files.profiles, b); err != nil {
			logger.Error("device profiles not saved", "path", files.profiles, "err", err)
		}
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(deviceSaveEvery)
		defer t.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-t.C:
				save(false)
			}
		}
	}()
	return func() {
		cancel()
		<-done
		save(true)
	}, nil
}

// writeFileAtomic writes a file readable by its owner only, through a
// temporary file renamed over the old one.
func writeFileAtomic(path string, data []byte) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
