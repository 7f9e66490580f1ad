#pragma once
// libpq, loaded the first time a workflow opens a PostgreSQL store (dlopen of libpq.so.5), not
// linked into the host: a host whose workflows keep SQLite does not map libpq and what it pulls
// in (GnuTLS, Kerberos, LDAP, SASL: about 4 MiB of resident memory at start, issue 13).
// The functions are libpq's own, called through this table under their own names:
// `pq().PQexec(conn, sql)`.

#include <libpq-fe.h>

#include <expected>
#include <string>

namespace vik::store {

struct Libpq {
#define VIK_LIBPQ_FUNCTIONS(X)                                                                                                   \
    X(PQclear)                                                                                                                   \
    X(PQconnectdbParams)                                                                                                         \
    X(PQconninfoFree)                                                                                                            \
    X(PQconninfoParse)                                                                                                           \
    X(PQdb)                                                                                                                      \
    X(PQerrorMessage)                                                                                                            \
    X(PQexec)                                                                                                                    \
    X(PQexecParams)                                                                                                              \
    X(PQfinish)                                                                                                                  \
    X(PQfreemem)                                                                                                                 \
    X(PQgetisnull)                                                                                                               \
    X(PQgetlength)                                                                                                               \
    X(PQgetvalue)                                                                                                                \
    X(PQhost)                                                                                                                    \
    X(PQntuples)                                                                                                                 \
    X(PQport)                                                                                                                    \
    X(PQreset)                                                                                                                   \
    X(PQresultErrorField)                                                                                                        \
    X(PQresultErrorMessage)                                                                                                      \
    X(PQresultStatus)                                                                                                            \
    X(PQstatus)
#define VIK_LIBPQ_MEMBER(name) decltype(&::name) name = nullptr;
    VIK_LIBPQ_FUNCTIONS(VIK_LIBPQ_MEMBER)
#undef VIK_LIBPQ_MEMBER
};

// Loads libpq once per process (later calls return the same answer). The error names the
// library, what the dynamic loader said, and what to install.
std::expected<const Libpq *, std::string> load_libpq();

// The loaded functions; only after load_libpq() succeeded (PostgresStore::open calls it first).
const Libpq &pq();

} // namespace vik::store
