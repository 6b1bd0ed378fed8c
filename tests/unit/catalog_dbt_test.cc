// The dbt artifacts reader (catalog/dbt.h): real dbt-shaped manifest.json and catalog.json, packed
// at test time with libarchive's writer, and malformed archives, each a clear error. Independent of
// the store: the reader's output is checked as it is.
#include "catalog/dbt.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace connreg::catalog {
namespace {

using Emit = std::function<void(std::string_view)>;

struct Entry {
  std::string name;
  std::string data;
  unsigned type = AE_IFREG;
  std::string link;  // symlink target, or hard link target when `hardlink`
  bool hardlink = false;
  // For large entries: the size, and what writes the data (called once, in pieces).
  std::int64_t size = -1;
  std::function<void(const Emit&)> generate;
};

la_ssize_t AppendCallback(struct archive*, void* out, const void* data, size_t n) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(data), n);
  return static_cast<la_ssize_t>(n);
}

// A tar (gzip-compressed unless told otherwise) of `entries`, made with libarchive's writer.
std::string Pack(const std::vector<Entry>& entries, bool gzip = true) {
  std::string out;
  struct archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (gzip) {
    archive_write_add_filter_gzip(a);
    archive_write_set_filter_option(a, "gzip", "compression-level", "1");
  }
  archive_write_set_bytes_in_last_block(a, 1);
  EXPECT_EQ(archive_write_open(a, &out, nullptr, AppendCallback, nullptr), ARCHIVE_OK);
  for (const Entry& e : entries) {
    struct archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.name.c_str());
    archive_entry_set_filetype(entry, e.type);
    archive_entry_set_perm(entry, 0644);
    if (e.hardlink) {
      archive_entry_set_hardlink(entry, e.link.c_str());
    } else if (e.type == AE_IFLNK) {
      archive_entry_set_symlink(entry, e.link.c_str());
    }
    const bool has_data = e.type == AE_IFREG && !e.hardlink;
    archive_entry_set_size(entry, !has_data     ? 0
                                  : e.size >= 0 ? e.size
                                                : static_cast<std::int64_t>(e.data.size()));
    EXPECT_EQ(archive_write_header(a, entry), ARCHIVE_OK) << archive_error_string(a);
    if (has_data && e.generate) {
      e.generate(
          [a](std::string_view piece) { archive_write_data(a, piece.data(), piece.size()); });
    } else if (has_data && !e.data.empty()) {
      archive_write_data(a, e.data.data(), e.data.size());
    }
    archive_entry_free(entry);
  }
  EXPECT_EQ(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
  return out;
}

// The archive as a body arrives: in pieces of `piece` bytes; counts what was taken.
struct Source {
  explicit Source(std::string bytes, std::size_t piece = 64 * 1024)
      : bytes(std::move(bytes)), piece(piece) {}
  std::string bytes;
  std::size_t piece;
  std::size_t taken = 0;

  ReadPiece Reader() {
    return [this]() -> Result<std::string_view> {
      std::string_view rest = std::string_view(bytes).substr(taken);
      rest = rest.substr(0, piece);
      taken += rest.size();
      return rest;
    };
  }
};

Result<std::vector<store::DbtDescription>> Read(std::string archive, int depth = 2,
                                                const DbtLimits& limits = {}) {
  Source source(std::move(archive));
  return ReadDbtArtifacts(source.Reader(), depth, limits);
}

std::string ErrorOf(const Result<std::vector<store::DbtDescription>>& r) {
  return r ? std::string("(no error)") : r.error().message;
}

// A dbt 1.7 manifest of the jaffle_shop project (trimmed): models with and without an alias, a
// seed, a snapshot, a test and an analysis (ignored: no relation), a source with an identifier,
// macros and docs (ignored), and the fields dbt writes around them.
constexpr std::string_view kManifest = R"json({
  "metadata": {
    "dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v11.json",
    "dbt_version": "1.7.4", "generated_at": "2024-01-15T10:21:33.123456Z",
    "invocation_id": "3c6f7a3e-2b0e-4a53-9f7e-0d3f5b0c9a11", "env": {},
    "project_name": "jaffle_shop", "adapter_type": "postgres", "send_anonymous_usage_stats": false
  },
  "nodes": {
    "model.jaffle_shop.customers": {
      "database": "analytics", "schema": "public", "name": "customers",
      "resource_type": "model", "package_name": "jaffle_shop",
      "path": "customers.sql", "original_file_path": "models/customers.sql",
      "unique_id": "model.jaffle_shop.customers", "fqn": ["jaffle_shop", "customers"],
      "alias": "customers", "checksum": {"name": "sha256", "checksum": "a1b2"},
      "config": {"enabled": true, "alias": null, "schema": null, "materialized": "table",
                 "tags": [], "meta": {"owner": {"team": "data", "nested": [1, [2, [3]]]}},
                 "post-hook": [], "pre-hook": []},
      "tags": [],
      "description": "One record per customer, with their order history.",
      "columns": {
        "customer_id": {"name": "customer_id", "description": "Primary key of the customer.",
                        "meta": {}, "data_type": null, "constraints": [], "quote": null,
                        "tags": []},
        "first_order": {"name": "first_order", "description": "Date of the first order.",
                        "meta": {}, "data_type": "date", "constraints": [], "tags": []},
        "number_of_orders": {"name": "number_of_orders", "description": "", "meta": {},
                             "data_type": null, "tags": []}
      },
      "meta": {}, "group": null, "docs": {"show": true, "node_color": null},
      "patch_path": "jaffle_shop://models/schema.yml", "build_path": null, "deferred": false,
      "unrendered_config": {"materialized": "table"}, "created_at": 1705314093.5,
      "relation_name": "\"analytics\".\"public\".\"customers\"",
      "raw_code": "with customers as (\n select * from {{ ref('stg_customers') }}\n)\nselect * from customers",
      "language": "sql", "refs": [{"name": "stg_customers", "package": null, "version": null}],
      "sources": [], "metrics": [],
      "depends_on": {"macros": [], "nodes": ["model.jaffle_shop.stg_customers"]},
      "compiled_path": "target/compiled/jaffle_shop/models/customers.sql",
      "contract": {"enforced": false, "alias_types": true, "checksum": null},
      "access": "protected", "constraints": [], "version": null, "latest_version": null
    },
    "model.jaffle_shop.stg_orders": {
      "database": "analytics", "schema": "staging", "name": "stg_orders",
      "resource_type": "model", "alias": "orders_v2",
      "description": "Orders, cleaned up; the name \"status\" is one of placed, shipped.",
      "columns": {
        "order_id": {"name": "order_id", "description": "Primary key.", "meta": {}},
        "status": {"name": "status", "description": "Order status \u2014 see docs.", "meta": {}}
      },
      "raw_code": "select * from {{ source('jaffle_shop', 'orders') }}"
    },
    "seed.jaffle_shop.raw_payments": {
      "database": "analytics", "schema": "public", "name": "raw_payments",
      "resource_type": "seed", "alias": "raw_payments", "description": "Payments, from a CSV.",
      "columns": {}, "root_path": "/usr/src/jaffle_shop"
    },
    "snapshot.jaffle_shop.orders_snapshot": {
      "database": "analytics", "schema": "snapshots", "name": "orders_snapshot",
      "resource_type": "snapshot", "alias": "orders_snapshot", "description": "",
      "columns": {"dbt_valid_from": {"name": "dbt_valid_from",
                                      "description": "When this version became current."}}
    },
    "test.jaffle_shop.unique_customers_customer_id.c5af1ff4b1": {
      "database": "analytics", "schema": "public_dbt_test__audit",
      "name": "unique_customers_customer_id", "resource_type": "test",
      "alias": "unique_customers_customer_id", "description": "A test's description is ignored.",
      "columns": {}, "column_name": "customer_id",
      "test_metadata": {"name": "unique", "kwargs": {"column_name": "customer_id"}}
    },
    "analysis.jaffle_shop.revenue": {
      "database": "analytics", "schema": "public", "name": "revenue",
      "resource_type": "analysis", "alias": "revenue", "description": "Not a relation.",
      "columns": {}
    }
  },
  "sources": {
    "source.jaffle_shop.jaffle_shop.orders": {
      "database": "raw", "schema": "jaffle_shop", "name": "orders",
      "resource_type": "source", "source_name": "jaffle_shop",
      "source_description": "The shop's own database.", "loader": "fivetran",
      "identifier": "orders_raw", "quoting": {"database": null, "identifier": null},
      "loaded_at_field": "_etl_loaded_at",
      "freshness": {"warn_after": {"count": 12, "period": "hour"}, "error_after": null},
      "description": "One record per order, as the shop writes it.",
      "columns": {"id": {"name": "id", "description": "The order's id.", "meta": {}},
                  "amount": {"name": "amount", "description": null, "meta": {}}},
      "meta": {}, "relation_name": "\"raw\".\"jaffle_shop\".\"orders_raw\""
    }
  },
  "macros": {
    "macro.jaffle_shop.cents_to_dollars": {
      "name": "cents_to_dollars", "resource_type": "macro", "package_name": "jaffle_shop",
      "macro_sql": "{% macro cents_to_dollars(c) %} {{ c }} / 100 {% endmacro %}",
      "description": "A macro's description is ignored.", "arguments": []
    }
  },
  "docs": {"doc.jaffle_shop.__overview__": {"name": "__overview__", "block_contents": "x"}},
  "exposures": {}, "metrics": {}, "groups": {}, "selectors": {},
  "disabled": {"model.jaffle_shop.old": [{"database": "analytics", "schema": "public",
                                          "name": "old", "resource_type": "model",
                                          "description": "Disabled: ignored."}]},
  "parent_map": {"model.jaffle_shop.customers": ["model.jaffle_shop.stg_customers"]},
  "child_map": {}, "group_map": {}, "semantic_models": {}
})json";

// The catalog.json of the same project: the warehouse's own comments.
constexpr std::string_view kCatalog = R"json({
  "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/catalog/v1.json",
               "dbt_version": "1.7.4", "generated_at": "2024-01-15T10:22:01.5Z",
               "invocation_id": "3c6f7a3e-2b0e-4a53-9f7e-0d3f5b0c9a11", "env": {}},
  "nodes": {
    "model.jaffle_shop.customers": {
      "metadata": {"type": "BASE TABLE", "schema": "public", "name": "customers",
                   "database": "analytics", "comment": "the warehouse's comment (loses)",
                   "owner": "dbt"},
      "columns": {
        "customer_id": {"type": "integer", "index": 1, "name": "customer_id",
                        "comment": "warehouse comment on customer_id (loses)"},
        "number_of_orders": {"type": "bigint", "index": 3, "name": "number_of_orders",
                             "comment": "Orders placed, all time."},
        "lifetime_value": {"type": "numeric", "index": 4, "name": "lifetime_value",
                           "comment": null}
      },
      "stats": {"has_stats": {"id": "has_stats", "label": "Has Stats?", "value": false,
                              "include": false, "description": "Indicates whether there are statistics for this table"}},
      "unique_id": "model.jaffle_shop.customers"
    },
    "seed.jaffle_shop.raw_customers": {
      "metadata": {"type": "BASE TABLE", "schema": "public", "name": "raw_customers",
                   "database": "analytics", "comment": "Customers, loaded from a CSV.",
                   "owner": "dbt"},
      "columns": {"id": {"type": "integer", "index": 1, "name": "id", "comment": null}},
      "stats": {}, "unique_id": "seed.jaffle_shop.raw_customers"
    }
  },
  "sources": {
    "source.jaffle_shop.jaffle_shop.orders": {
      "metadata": {"type": "BASE TABLE", "schema": "jaffle_shop", "name": "orders_raw",
                   "database": "raw", "comment": null, "owner": "loader"},
      "columns": {"amount": {"type": "integer", "index": 3, "name": "amount",
                             "comment": "Amount in cents."}},
      "stats": {}, "unique_id": "source.jaffle_shop.jaffle_shop.orders"
    }
  },
  "errors": null
})json";

struct Expected {
  std::vector<std::string> path;
  std::string column;
  std::string description;
};

void ExpectDescriptions(const std::vector<store::DbtDescription>& got,
                        const std::vector<Expected>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].table_path, want[i].path) << i;
    EXPECT_EQ(got[i].column, want[i].column) << i;
    EXPECT_EQ(got[i].description, want[i].description) << i;
  }
}

TEST(CatalogDbt, ManifestAndCatalogMapOntoSchemaAndTable) {
  auto r =
      Read(Pack({{.name = "target", .type = AE_IFDIR},
                 {.name = "target/manifest.json", .data = std::string(kManifest)},
                 {.name = "target/run_results.json", .data = "{\"results\": []}"},
                 {.name = "target/catalog.json", .data = std::string(kCatalog)},
                 {.name = "target/compiled/jaffle_shop/models/customers.sql", .data = "select 1"}}),
           /*depth=*/2);
  ASSERT_TRUE(r) << ErrorOf(r);
  // In (path, column) order; the manifest's descriptions win over the catalog's comments, the
  // catalog fills in what the manifest leaves empty; tests, analyses, macros, docs, disabled
  // nodes and empty or null descriptions give nothing.
  ExpectDescriptions(
      *r,
      {
          {{"jaffle_shop", "orders_raw"}, "", "One record per order, as the shop writes it."},
          {{"jaffle_shop", "orders_raw"}, "amount", "Amount in cents."},
          {{"jaffle_shop", "orders_raw"}, "id", "The order's id."},
          {{"public", "customers"}, "", "One record per customer, with their order history."},
          {{"public", "customers"}, "customer_id", "Primary key of the customer."},
          {{"public", "customers"}, "first_order", "Date of the first order."},
          {{"public", "customers"}, "number_of_orders", "Orders placed, all time."},
          {{"public", "raw_customers"}, "", "Customers, loaded from a CSV."},
          {{"public", "raw_payments"}, "", "Payments, from a CSV."},
          {{"snapshots", "orders_snapshot"}, "dbt_valid_from", "When this version became current."},
          {{"staging", "orders_v2"},
           "",
           "Orders, cleaned up; the name \"status\" is one of placed, shipped."},
          {{"staging", "orders_v2"}, "order_id", "Primary key."},
          {{"staging", "orders_v2"}, "status", "Order status \u2014 see docs."},
      });
}

TEST(CatalogDbt, ThreeLevelPathsKeepTheDatabase) {
  // The catalog first this time: the manifest, read after it, still wins.
  auto r = Read(Pack({{.name = "./catalog.json", .data = std::string(kCatalog)},
                      {.name = "./manifest.json", .data = std::string(kManifest)}}),
                /*depth=*/3);
  ASSERT_TRUE(r) << ErrorOf(r);
  ASSERT_EQ(r->size(), 13u);
  EXPECT_EQ((*r)[0].table_path, (domain::CatalogPath{"analytics", "public", "customers"}));
  EXPECT_EQ((*r)[0].description, "One record per customer, with their order history.");
  EXPECT_EQ((*r)[1].column, "customer_id");
  EXPECT_EQ((*r)[1].description, "Primary key of the customer.");
  EXPECT_EQ(r->back().table_path, (domain::CatalogPath{"raw", "jaffle_shop", "orders_raw"}));
}

TEST(CatalogDbt, BytesArrivingOneAtATimeReadTheSame) {
  const std::string archive = Pack({{.name = "manifest.json", .data = std::string(kManifest)}});
  Source whole(archive);
  Source bytewise(archive, 1);
  auto a = ReadDbtArtifacts(whole.Reader(), 2);
  auto b = ReadDbtArtifacts(bytewise.Reader(), 2);
  ASSERT_TRUE(a) << ErrorOf(a);
  ASSERT_TRUE(b) << ErrorOf(b);
  ASSERT_EQ(a->size(), b->size());
  for (std::size_t i = 0; i < a->size(); ++i) EXPECT_EQ((*a)[i].description, (*b)[i].description);
}

const Entry kManifestEntry{.name = "manifest.json", .data = std::string(kManifest)};

TEST(CatalogDbt, PathTraversalIsRefused) {
  for (const std::string name : {"../x", "target/../../etc/cron.d/x", "..", "/etc/passwd"}) {
    auto r = Read(Pack({kManifestEntry, {.name = name, .data = "x"}}));
    ASSERT_FALSE(r) << name;
    EXPECT_EQ(r.error().code, ErrorCode::kBadRequest);
    const std::string why = name.front() == '/' ? "absolute path" : "\"..\" component";
    EXPECT_NE(r.error().message.find(why), std::string::npos) << name << ": " << ErrorOf(r);
  }
}

TEST(CatalogDbt, LinksAndDevicesAreRefused) {
  auto symlink = Read(Pack({{.name = "manifest.json", .type = AE_IFLNK, .link = "/etc/passwd"}}));
  EXPECT_NE(ErrorOf(symlink).find("\"manifest.json\" is a symbolic link"), std::string::npos)
      << ErrorOf(symlink);
  auto hardlink = Read(
      Pack({kManifestEntry, {.name = "catalog.json", .link = "manifest.json", .hardlink = true}}));
  EXPECT_NE(ErrorOf(hardlink).find("\"catalog.json\" is a hard link"), std::string::npos)
      << ErrorOf(hardlink);
  for (unsigned type : {AE_IFCHR, AE_IFBLK, AE_IFIFO}) {
    auto device = Read(Pack({kManifestEntry, {.name = "dev", .type = type}}));
    EXPECT_NE(ErrorOf(device).find("\"dev\" is not a regular file or a directory"),
              std::string::npos)
        << ErrorOf(device);
  }
}

// Zeros, `n` bytes, in 1 MiB pieces.
std::function<void(const Emit&)> Zeros(std::int64_t n) {
  return [n](const Emit& emit) {
    const std::string block(1 << 20, '\0');
    for (std::int64_t left = n; left > 0; left -= static_cast<std::int64_t>(block.size())) {
      emit(std::string_view(block).substr(0, std::min<std::int64_t>(left, block.size())));
    }
  };
}

TEST(CatalogDbt, GzipBombStopsAtTheExpandedLimit) {
  // 1 GiB of zeros compresses to about 4.5 MiB; the contract's limit is 512 MiB expanded.
  constexpr std::int64_t kBomb = 1ll << 30;
  Source source(
      Pack({kManifestEntry, {.name = "bomb.bin", .size = kBomb, .generate = Zeros(kBomb)}}));
  const auto start = std::chrono::steady_clock::now();
  auto r = ReadDbtArtifacts(source.Reader(), 2);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kBadRequest);
  EXPECT_EQ(r.error().message, "the archive expands to more than 512 MiB");
  // It stopped at the limit, not at the end: a bit over half of the compressed input was taken.
  EXPECT_LT(source.taken, source.bytes.size() * 6 / 10)
      << source.taken << " of " << source.bytes.size();
  EXPECT_LT(seconds, 30.0);
  std::printf("[ gzip bomb ] %zu of %zu compressed bytes read, stopped after %.2f s\n",
              source.taken, source.bytes.size(), seconds);
}

TEST(CatalogDbt, TruncatedArchiveIsAClearError) {
  const std::string whole =
      Pack({kManifestEntry, {.name = "catalog.json", .data = std::string(kCatalog)}});
  for (std::size_t cut : {whole.size() / 2, whole.size() - 9, std::size_t{30}}) {
    auto r = Read(whole.substr(0, cut));
    ASSERT_FALSE(r) << cut;
    EXPECT_EQ(r.error().code, ErrorCode::kBadRequest);
    EXPECT_NE(r.error().message.find("truncated"), std::string::npos) << cut << ": " << ErrorOf(r);
  }
}

TEST(CatalogDbt, NotAGzipTarIsAClearError) {
  auto text = Read("this is not an archive at all, just some text that goes on for a while\n");
  EXPECT_NE(ErrorOf(text).find("not a .tar.gz"), std::string::npos) << ErrorOf(text);
  auto plain_tar = Read(Pack({kManifestEntry}, /*gzip=*/false));
  EXPECT_NE(ErrorOf(plain_tar).find("not gzip-compressed"), std::string::npos)
      << ErrorOf(plain_tar);
  auto empty = Read("");
  EXPECT_FALSE(empty);
  EXPECT_EQ(empty.error().code, ErrorCode::kBadRequest);
}

TEST(CatalogDbt, AnArchiveWithoutManifestIsAClearError) {
  auto r = Read(Pack({{.name = "target/catalog.json", .data = std::string(kCatalog)},
                      {.name = "project/target/manifest.json", .data = std::string(kManifest)}}));
  EXPECT_EQ(ErrorOf(r), "the archive has no manifest.json (at its root or under target/)");
  auto twice = Read(Pack({kManifestEntry, {.name = "target/manifest.json", .data = "{}"}}));
  EXPECT_EQ(ErrorOf(twice), "the archive holds more than one manifest.json");
}

TEST(CatalogDbt, InvalidJsonNamesTheFileAndTheOffset) {
  auto r = Read(Pack({{.name = "manifest.json", .data = R"({"nodes": {"a": {"name": x}}})"}}));
  EXPECT_NE(ErrorOf(r).find("manifest.json is not valid JSON at byte 25"), std::string::npos)
      << ErrorOf(r);
  auto cut = Read(Pack({kManifestEntry, {.name = "catalog.json", .data = R"({"nodes": {)"}}));
  EXPECT_NE(ErrorOf(cut).find("catalog.json is not valid JSON at byte 11"), std::string::npos)
      << ErrorOf(cut);
  auto utf8 = Read(Pack({{.name = "manifest.json", .data = "{\"a\": \"\xff\"}"}}));
  EXPECT_NE(ErrorOf(utf8).find("manifest.json is not valid JSON"), std::string::npos)
      << ErrorOf(utf8);
  auto nul = Read(Pack(
      {{.name = "manifest.json",
        .data = R"({"nodes": {"m": {"resource_type": "model", "description": "a\u0000b"}}})"}}));
  EXPECT_NE(ErrorOf(nul).find("NUL character"), std::string::npos) << ErrorOf(nul);
}

TEST(CatalogDbt, DeeplyNestedJsonIsAClearError) {
  std::string deep = R"({"nodes": {"m": {"meta": )";
  deep += std::string(10000, '[') + std::string(10000, ']') + "}}}";
  auto r = Read(Pack({{.name = "manifest.json", .data = deep}}));
  EXPECT_NE(ErrorOf(r).find("nests objects or arrays deeper than 64"), std::string::npos)
      << ErrorOf(r);
}

TEST(CatalogDbt, CompressedLimitIsA413AndExpandedLimitCountsEveryEntry) {
  std::mt19937_64 random(7);
  std::string noise(3 << 20, '\0');
  for (char& c : noise) c = static_cast<char>(random());
  DbtLimits limits;
  limits.max_compressed_bytes = 2 << 20;
  auto big = Read(Pack({kManifestEntry, {.name = "noise.bin", .data = noise}}), 2, limits);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, ErrorCode::kPayloadTooLarge);
  EXPECT_EQ(big.error().message, "the artifacts archive is larger than 2 MiB");

  limits = DbtLimits{};
  limits.max_expanded_bytes = 1 << 20;
  std::vector<Entry> many{kManifestEntry};
  for (int i = 0; i < 8; ++i)
    many.push_back({.name = "f" + std::to_string(i), .data = std::string(200 << 10, 'a')});
  EXPECT_EQ(ErrorOf(Read(Pack(many), 2, limits)), "the archive expands to more than 1 MiB");
}

TEST(CatalogDbt, TheSourcesErrorIsReturnedAsItIs) {
  const std::string archive = Pack({kManifestEntry});
  std::size_t calls = 0;
  auto r = ReadDbtArtifacts(
      [&]() -> Result<std::string_view> {
        if (++calls == 2) return Error{ErrorCode::kPayloadTooLarge, "request body too large"};
        return std::string_view(archive).substr(0, 100);
      },
      2);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kPayloadTooLarge);
  EXPECT_EQ(r.error().message, "request body too large");
}

long StatusKib(const char* field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field, 0) == 0) return std::stol(line.substr(std::strlen(field)));
  }
  return -1;
}

// A manifest of `models` models, each with 20 columns (2 of them documented) and 7 KiB of SQL that
// is parsed but not kept; written in pieces, never whole in memory.
void GenerateManifest(int models, const Emit& emit) {
  emit(R"({"metadata": {"dbt_version": "1.7.4", "adapter_type": "postgres"}, "nodes": {)");
  const std::string sql = "select " + std::string(7000, 'x') + " from t";
  std::string node;
  for (int i = 0; i < models; ++i) {
    node.clear();
    if (i > 0) node += ",";
    const std::string name = "model_" + std::to_string(i);
    node += "\"model.big." + name + "\": {\"database\": \"db\", \"schema\": \"big\", \"name\": \"" +
            name + "\", \"resource_type\": \"model\", \"alias\": null, \"raw_code\": \"" + sql +
            "\", \"description\": \"Model " + std::to_string(i) + ".\", \"columns\": {";
    for (int c = 0; c < 20; ++c) {
      if (c > 0) node += ",";
      node += "\"col_" + std::to_string(c) + "\": {\"name\": \"col_" + std::to_string(c) +
              "\", \"description\": \"" + (c < 2 ? "Column " + std::to_string(c) + "." : "") +
              "\", \"meta\": {}, \"data_type\": null}";
    }
    node += "}}";
    emit(node);
  }
  emit("}, \"sources\": {}, \"macros\": {}}");
}

TEST(CatalogDbt, LargeManifestIsReadWithBoundedMemory) {
  constexpr int kModels = 8500;  // about 64 MiB of JSON
  std::int64_t size = 0;
  GenerateManifest(kModels,
                   [&](std::string_view p) { size += static_cast<std::int64_t>(p.size()); });
  Source source(
      Pack({{.name = "target/manifest.json", .size = size, .generate = [](const Emit& emit) {
               GenerateManifest(kModels, emit);
             }}}));
  // Peak RSS from here on (writing 5 to clear_refs resets VmHWM to the current RSS).
  { std::ofstream("/proc/self/clear_refs") << "5"; }
  const long before = StatusKib("VmRSS:");
  const auto start = std::chrono::steady_clock::now();
  auto r = ReadDbtArtifacts(source.Reader(), 2);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const long peak = StatusKib("VmHWM:");
  ASSERT_TRUE(r) << ErrorOf(r);
  EXPECT_EQ(r->size(), static_cast<std::size_t>(kModels) * 3);
  // What is kept: 25,500 short descriptions (a few MiB with their paths and map nodes); the
  // 64 MiB of JSON around them never is.
  const long growth_mib = (peak - before) / 1024;
  std::printf(
      "[ large manifest ] %.1f MiB of JSON (%.1f MiB compressed), %zu descriptions, "
      "peak RSS growth %ld MiB, %.2f s\n",
      static_cast<double>(size) / (1 << 20), static_cast<double>(source.bytes.size()) / (1 << 20),
      r->size(), growth_mib, seconds);
  EXPECT_LT(growth_mib, 24);
}

}  // namespace
}  // namespace connreg::catalog
