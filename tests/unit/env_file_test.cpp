#include "config/env_file.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

using connector::parse_env_text;
using connector::read_env_file;
using Entries = std::vector<std::pair<std::string, std::string>>;

namespace {
Entries parse_ok(std::string_view text) {
  const auto file = parse_env_text(text, ".env");
  EXPECT_EQ(file.problems, std::vector<std::string>{});
  return file.entries;
}
}  // namespace

TEST(env_file_test, plain_assignments_comments_and_blank_lines) {
  EXPECT_EQ(parse_ok("# comment\n\nA=1\n  B = two words  \n\t# indented comment\nexport C=3\n"),
            (Entries{{"A", "1"}, {"B", "two words"}, {"C", "3"}}));
}

TEST(env_file_test, inline_comment_needs_whitespace_before_hash) {
  EXPECT_EQ(parse_ok("A=value # note\nB=pa#ss\nC= # only a comment\nD=#kept\nE=x\t#tab\n"),
            (Entries{{"A", "value"}, {"B", "pa#ss"}, {"C", ""}, {"D", "#kept"}, {"E", "x"}}));
}

TEST(env_file_test, empty_value_is_kept_as_empty) {
  EXPECT_EQ(parse_ok("A=\nB=   \n"), (Entries{{"A", ""}, {"B", ""}}));
}

TEST(env_file_test, single_quotes_are_literal) {
  EXPECT_EQ(parse_ok(R"(A='a\nb # not a comment' # comment)"), (Entries{{"A", R"(a\nb # not a comment)"}}));
}

TEST(env_file_test, double_quotes_expand_escapes) {
  EXPECT_EQ(parse_ok(R"(A="line1\nline2\r\tq\"b\\s\x")"), (Entries{{"A", "line1\nline2\r\tq\"b\\s\\x"}}));
}

TEST(env_file_test, quoted_values_may_span_lines) {
  EXPECT_EQ(parse_ok("KEY=\"-----BEGIN-----\nabc\n-----END-----\"\nNEXT=1\n"),
            (Entries{{"KEY", "-----BEGIN-----\nabc\n-----END-----"}, {"NEXT", "1"}}));
}

TEST(env_file_test, backticks_are_literal_and_may_hold_other_quotes) {
  EXPECT_EQ(parse_ok("A=`it's \"quoted\"`\n"), (Entries{{"A", "it's \"quoted\""}}));
}

TEST(env_file_test, keys_allow_dots_and_dashes_and_export_alone_is_a_key) {
  EXPECT_EQ(parse_ok("my.key-1=x\nexport=y\n"), (Entries{{"my.key-1", "x"}, {"export", "y"}}));
}

TEST(env_file_test, crlf_line_endings_and_bom) {
  EXPECT_EQ(parse_ok("\xEF\xBB\xBF"
                     "A=1\r\nB=\"x\"\r\n"),
            (Entries{{"A", "1"}, {"B", "x"}}));
}

TEST(env_file_test, repeated_key_appears_twice_in_order) {
  EXPECT_EQ(parse_ok("A=1\nA=2\n"), (Entries{{"A", "1"}, {"A", "2"}}));
}

TEST(env_file_test, malformed_lines_are_reported_with_line_number_and_never_their_text) {
  const auto file = parse_env_text("A=1\nsupersecret\nB C=2\n=3\nD=\"x\" trailing-secret\nE=5\n", "my.env");
  EXPECT_EQ(file.entries, (Entries{{"A", "1"}, {"E", "5"}}));
  ASSERT_EQ(file.problems.size(), 4u);
  EXPECT_EQ(file.problems[0],
            "my.env line 2: expected KEY=VALUE (KEY made of letters, digits, '_', '.', '-')");
  EXPECT_TRUE(file.problems[1].starts_with("my.env line 3: expected KEY=VALUE"));
  EXPECT_TRUE(file.problems[2].starts_with("my.env line 4: expected KEY=VALUE"));
  EXPECT_EQ(file.problems[3], "my.env line 5: unexpected text after the closing quote");
  for (const auto& p : file.problems) {
    EXPECT_EQ(p.find("secret"), std::string::npos) << p;
  }
}

TEST(env_file_test, unterminated_quote_names_the_opening_line_and_parsing_goes_on) {
  // The quote may never close: the lines after it are still read, so their settings count and their
  // own problems are reported too (not "STREAM_KEY: required" for a key that is set further down).
  const auto file = parse_env_text("A=1\nB=\"never closed\nC=3\nbad line\nD='x\n", ".env");
  EXPECT_EQ(file.entries, (Entries{{"A", "1"}, {"C", "3"}}));
  EXPECT_EQ(file.problems, (std::vector<std::string>{
                               ".env line 2: the value's opening \" has no closing \"",
                               ".env line 4: expected KEY=VALUE (KEY made of letters, digits, '_', '.', '-')",
                               ".env line 5: the value's opening ' has no closing '",
                           }));
}

TEST(env_file_test, a_closed_multi_line_value_after_an_unterminated_one_is_still_read) {
  const auto file = parse_env_text("B=\"open\nC=\"1\n2\"\n", ".env");
  EXPECT_EQ(file.entries, (Entries{{"C", "1\n2"}}));
  ASSERT_EQ(file.problems.size(), 1u);
  EXPECT_TRUE(file.problems[0].starts_with(".env line 1:"));
}

TEST(env_file_test, line_numbers_count_lines_inside_quoted_values) {
  const auto file = parse_env_text("A=\"1\n2\n3\"\nbroken\n", ".env");
  ASSERT_EQ(file.problems.size(), 1u);
  EXPECT_TRUE(file.problems[0].starts_with(".env line 4:"));
}

TEST(env_file_test, missing_default_file_is_silent_but_missing_explicit_file_is_a_problem) {
  const auto path =
      std::filesystem::temp_directory_path() / ("no-such-" + std::to_string(::getpid()) + ".env");
  const auto quiet = read_env_file(path, false);
  EXPECT_TRUE(quiet.entries.empty());
  EXPECT_TRUE(quiet.problems.empty());
  const auto loud = read_env_file(path, true);
  ASSERT_EQ(loud.problems.size(), 1u);
  EXPECT_EQ(loud.problems[0],
            "env file \"" + path.string() + "\": cannot be read: No such file or directory");
}

TEST(env_file_test, reads_a_file_and_names_it_in_problems) {
  const auto path = std::filesystem::temp_directory_path() / ("env-file-test-" + std::to_string(::getpid()));
  std::ofstream(path) << "A=1\nbad line\n";
  const auto file = read_env_file(path, true);
  std::filesystem::remove(path);
  EXPECT_EQ(file.entries, (Entries{{"A", "1"}}));
  ASSERT_EQ(file.problems.size(), 1u);
  EXPECT_TRUE(file.problems[0].starts_with("env file \"" + path.string() + "\" line 2: "));
}

TEST(env_file_test, a_directory_is_a_problem_even_when_optional) {
  const auto file = read_env_file(std::filesystem::temp_directory_path(), false);
  ASSERT_EQ(file.problems.size(), 1u);
  EXPECT_NE(file.problems[0].find("is a directory"), std::string::npos);
}
