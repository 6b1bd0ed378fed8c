// `connreg key rotate`: re-encrypts every stored secret under a new master key while servers keep
// serving. Servers poll their key file and reload it (cli/serve.cc), so the sequence is:
//   1. key file := [new, old...]   (servers now seal with `new` and still open `old`)
//   2. wait `settle` so every server has reloaded
//   3. re-seal, in batches, every secret not under `new` (compare-and-set per value, so a
//      concurrent update is never overwritten), until none is left, then wait and check again
//   4. key file := [new]           (the old keys are no longer needed)
// Killed at any point, nothing is lost: every value is sealed under a key the file holds, and a
// re-run finds the file already holding [new, old...] and resumes at step 2.
#include <sodium.h>

#include <iostream>
#include <thread>

#include <boost/json/serialize.hpp>

#include "cli/cli.h"
#include "core/log.h"

namespace connreg::cli {
namespace {

constexpr int kBatch = 500;

// Re-seals everything not under the sealer's current key; returns how many values moved.
std::int64_t ResealAll(store::SealedSecretStore& store, const crypto::SodiumSealer& sealer) {
  const std::string target = sealer.current_key_id();
  std::int64_t moved = 0;
  for (;;) {
    auto batch = store.SecretsNotUnderKey(target, kBatch);
    if (!batch) throw std::runtime_error("cannot list secrets: " + batch.error().message);
    if (batch->empty()) return moved;
    std::int64_t progress = 0;
    for (const auto& ref : *batch) {
      auto plain = sealer.Open(ref.connection_id, ref.field, ref.secret);
      if (!plain) {
        throw std::runtime_error("cannot open the " + ref.field + " of connection " +
                                 ref.connection_id + ": " + plain.error().message);
      }
      domain::StoredSecret next =
          sealer.Seal(ref.connection_id, ref.field, *plain, ref.secret.updated_at);
      sodium_memzero(plain->data(), plain->size());
      auto s = store.ResealSecret(ref.connection_id, ref.field, ref.secret.sealed, next);
      if (s) {
        ++progress;
      } else if (s.error().code != ErrorCode::kPreconditionFailed &&
                 s.error().code != ErrorCode::kNotFound) {
        throw std::runtime_error("cannot re-seal a secret: " + s.error().message);
      }
      // kPreconditionFailed / kNotFound: changed or deleted meanwhile; the next batch re-reads.
    }
    moved += progress;
    if (progress == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace

int RotateMasterKey(store::SealedSecretStore& store, const crypto::MasterKeySettings& settings,
                    std::chrono::seconds settle) {
  crypto::LoadedKeys loaded = crypto::LoadMasterKeys(settings);
  crypto::Keyring ring = loaded.keys;
  const bool resuming = !ring.previous.empty();
  if (!loaded.file.empty() && !resuming) {
    std::string raw(crypto::MasterKey::kBytes, '\0');
    randombytes_buf(raw.data(), raw.size());
    auto fresh = std::make_shared<const crypto::MasterKey>(raw);
    sodium_memzero(raw.data(), raw.size());
    ring.previous.insert(ring.previous.begin(), ring.current);
    ring.current = fresh;
    crypto::WriteKeyFile(loaded.file, ring);
  }
  crypto::SodiumSealer sealer(ring);
  log::Event(log::Level::kInfo, "key_rotation_started",
             {{"newKeyId", sealer.current_key_id()}, {"resuming", resuming}});
  if (!loaded.file.empty()) std::this_thread::sleep_for(settle);

  std::int64_t moved = ResealAll(store, sealer);
  if (!loaded.file.empty()) {
    // A server that had not reloaded yet may have sealed with an old key meanwhile.
    std::this_thread::sleep_for(settle);
    moved += ResealAll(store, sealer);
    crypto::WriteKeyFile(loaded.file, crypto::Keyring{ring.current, {}});
  }
  auto ids = store.SecretKeyIds();
  if (!ids) throw std::runtime_error("cannot check the result: " + ids.error().message);
  for (const auto& id : *ids) {
    if (id != sealer.current_key_id()) {
      throw std::runtime_error("secrets under key " + id + " remain; run key rotate again");
    }
  }
  std::cout << boost::json::serialize(boost::json::object{{"event", "key_rotated"},
                                                          {"keyId", sealer.current_key_id()},
                                                          {"resealed", moved},
                                                          {"keyFile", loaded.file}})
            << std::endl;
  return 0;
}

void CheckKeysCoverStore(store::SealedSecretStore& store, const crypto::SodiumSealer& sealer) {
  auto ids = store.SecretKeyIds();
  if (!ids) throw std::runtime_error("cannot read the store: " + ids.error().message);
  for (const auto& id : *ids) {
    if (!sealer.Knows(id)) {
      throw std::runtime_error(
          "the store holds secrets sealed under master key " + id +
          ", which the configured key(s) do not include (current key " + sealer.current_key_id() +
          "): this is the wrong master key; set CONNREG_MASTER_KEY or CONNREG_MASTER_KEY_FILE "
          "to the key the data was written with");
    }
  }
}

}  // namespace connreg::cli
