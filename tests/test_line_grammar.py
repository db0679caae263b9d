"""The line grammar's fast path for the commands of a put/reserve/delete
cycle gives what beanstalkd's general rules give, for every form of them."""

from twisted.trial import unittest

from marconi_tx.transport.line import grammar

#: Lines near the fast path: the usual forms, and each way to leave them.
LINES = (
    b"put 0 0 0 0", b"put 1024 0 60 3", b"put 4294967295 4294967295 4294967295 4294967295",
    b"put 4294967296 0 60 3", b"put 1 2 3", b"put 1 2 3 4 5", b"put  1 2 3 4",
    b"put 1  2 3 4", b"put 1 2 3 4 ", b"put -1 0 60 3", b"put +1 0 60 3", b"put 1 0 60 0x3",
    b"put 01 002 3 4", b"put 1 2 3 4\0", b"put\t1 2 3 4", b"put 1 2 3 \xd9\xa3",
    b"reserve", b"reserve ", b"reserve x", b"reserves", b"reserve\0",
    b"delete 1", b"delete 0", b"delete 18446744073709551615", b"delete 18446744073709551616",
    b"delete  1", b"delete 1 ", b"delete -1", b"delete", b"delete ", b"delete 1 2",
    b"delete 007", b"delete \xd9\xa3", b"deleted 1",
)


def outcome(parse, line):
    try:
        return parse(line)
    except (grammar.BadFormat, grammar.UnknownCommand) as e:
        return type(e)


class FastPathTests(unittest.SynchronousTestCase):
    def test_fast_path_agrees_with_the_general_rules(self):
        """Each line parses to the same command and arguments (or the same
        error) through ``parse`` as through the general rules alone."""
        for line in LINES:
            self.assertEqual(outcome(grammar.parse, line), outcome(grammar.general, line),
                             line)

    def test_usual_forms_take_the_fast_path(self):
        """The cycle's usual lines are parsed by the fast path itself."""
        self.assertEqual(grammar._usual(b"put 1024 0 60 3"), ("put", (1024, 0, 60, 3)))
        self.assertEqual(grammar._usual(b"reserve"), ("reserve", ()))
        self.assertEqual(grammar._usual(b"delete 42"), ("delete", (42,)))
        self.assertIsNone(grammar._usual(b"put  1024 0 60 3"))
