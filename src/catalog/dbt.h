// dbt artifacts (contract section 13): the descriptions of a dbt project's tables and columns,
// read from a `.tar.gz` of its `target/` folder as the bytes arrive. libarchive reads the archive
// from memory pieces (nothing is ever extracted to disk) under the contract's limits, checked as
// it goes; manifest.json and catalog.json are read with Boost.JSON's streaming parser, keeping
// only the descriptions, so memory grows with the descriptions kept, not with the archive or the
// JSON files. Pure apart from the reading; thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "store/store.h"

namespace connreg::catalog {

struct DbtLimits {
  std::uint64_t max_compressed_bytes = 64ull << 20;  // the archive as uploaded (413 past it)
  std::uint64_t max_expanded_bytes = 512ull << 20;   // everything it decompresses to (400)
  // What the kept descriptions may take in memory, counted with a per-entry overhead (400 past
  // it): what bounds the reader's memory whatever the archive holds.
  std::uint64_t max_kept_bytes = 64ull << 20;
};

// The next piece of the archive's bytes: empty at the end; an error stops the reading and is
// returned as it is (the body's own errors: 413, a malformed multipart body). A piece must stay
// valid until the next call.
using ReadPiece = std::function<Result<std::string_view>()>;

// Reads a dbt `target/` archive and returns the descriptions it gives, one per table (column
// empty) or column, none empty, in a deterministic order. manifest.json is required, catalog.json
// optional, each at the archive's root or under `target/`; manifest descriptions win over
// catalog comments. dbt's (database, schema, name) become the connection's path by its driver's
// `path_depth`: 2 → [schema, name] (the postgres family's database is the connection's own;
// mysql's dbt schema is the database), 3 → [database, schema, name].
// Errors: kBadRequest naming what is wrong (not a gzip-compressed tar, truncated or corrupt, an
// entry that is absolute, has a `..` component or is not a regular file or directory, past the
// expanded limit, no manifest.json, invalid JSON with the file and byte offset), kPayloadTooLarge
// past the compressed limit, or the error `read` returned.
Result<std::vector<store::DbtDescription>> ReadDbtArtifacts(const ReadPiece& read, int path_depth,
                                                            const DbtLimits& limits = {});

}  // namespace connreg::catalog
