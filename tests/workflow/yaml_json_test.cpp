// One YAML → JSON rule set for the workflow loader and the file tracker: YAML 1.2's core schema.
#include "util/yaml_json.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <yaml-cpp/yaml.h>

#include <cmath>

namespace json = boost::json;
using vik::util::plain_scalar_to_json;
using vik::util::yaml_to_json;

TEST_CASE("yaml to json: plain scalars follow the core schema, quoted ones are strings", "[workflow][yaml]") {
    CHECK(plain_scalar_to_json("True") == json::value(true));
    CHECK(plain_scalar_to_json("FALSE") == json::value(false));
    CHECK(plain_scalar_to_json("yes") == json::value("yes")); // YAML 1.1 booleans are strings in 1.2
    CHECK(plain_scalar_to_json("42") == json::value(42));
    CHECK(plain_scalar_to_json("-7") == json::value(-7));
    CHECK(plain_scalar_to_json("0x1F") == json::value(31));
    CHECK(plain_scalar_to_json("0o17") == json::value(15));
    CHECK(plain_scalar_to_json("1.5") == json::value(1.5));
    CHECK(plain_scalar_to_json("1e3") == json::value(1000.0));
    CHECK(std::isinf(plain_scalar_to_json(".inf").as_double()));
    CHECK(plain_scalar_to_json("~").is_null());
    CHECK(plain_scalar_to_json("99999999999999999999") == json::value("99999999999999999999"));
    CHECK(plain_scalar_to_json("1.2.3") == json::value("1.2.3"));
    auto doc = yaml_to_json(YAML::Load("a: 'True'\nb: True\nc: [1, '2', null]\nd: {e: \"0x10\", f: 0x10}\n"));
    CHECK(json::serialize(doc) == R"({"a":"True","b":true,"c":[1,"2",null],"d":{"e":"0x10","f":16}})");
}

TEST_CASE("yaml to json: keys that keep strings keep their plain scalars as written", "[workflow][yaml]") {
    auto keep = [](const std::string &k) { return k == "id"; };
    auto doc = yaml_to_json(YAML::Load("- {id: 42, n: 42}\n- {id: True, n: True}\n"), keep);
    CHECK(json::serialize(doc) == R"([{"id":"42","n":42},{"id":"True","n":true}])");
}
