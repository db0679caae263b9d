"""The catalog of a pooled deployment on sqlite: pools, flavors and where
each queue lives (the tables of schema version 3)."""

from zope.interface import implementer

from marconi_tx import errors, json_text
from marconi_tx.storage.interfaces import (
    ICatalogController,
    IFlavorController,
    IPoolController,
)
from marconi_tx.storage.records import Flavor, Pool
from marconi_tx.storage.sqlite.transactions import deferred, dump_json, writes

POOL_COLUMNS = "name, uri, weight, flavor, CAST(options AS BLOB), number"
#: The keys of ``update``'s changes that are columns (options is JSON text).
POOL_FIELDS = ("uri", "weight", "flavor", "options")


def to_pool(row):
    name, uri, weight, flavor, options, number = row
    return Pool(name=name, uri=uri, weight=weight, flavor=flavor,
                options=json_text.stored(options), number=number)


def select_pool(db, name):
    row = db.execute(f"SELECT {POOL_COLUMNS} FROM pools WHERE name=?", (name,)).fetchone()
    if row is None:
        raise errors.PoolDoesNotExist(name)
    return to_pool(row)


@implementer(IPoolController)
class PoolController:
    def __init__(self, driver):
        self.driver = driver

    @writes
    def create(self, db, name, uri, weight, flavor=None, options=None):
        if db.execute("SELECT 1 FROM pools WHERE name=?", (name,)).fetchone():
            raise errors.PoolExists(name)
        db.execute("UPDATE pool_numbers SET last=last+1")
        number, = db.execute("SELECT last FROM pool_numbers").fetchone()
        db.execute("INSERT INTO pools (name, uri, weight, flavor, options, number) "
                   "VALUES (?,?,?,?,?,?)",
                   (name, uri, weight, flavor, dump_json(options or {}), number))
        return select_pool(db, name)

    @deferred
    def get(self, name):
        return select_pool(self.driver.read(), name)

    @deferred
    def list(self, marker=None, limit=10, flavor=None):
        sql, args = f"SELECT {POOL_COLUMNS} FROM pools WHERE name>?", [marker or ""]
        if flavor is not None:
            sql += " AND flavor=?"
            args.append(flavor)
        rows = self.driver.read().execute(sql + " ORDER BY name LIMIT ?",
                                          (*args, limit)).fetchall()
        return [to_pool(row) for row in rows]

    @writes
    def update(self, db, name, changes):
        fields = {k: v for k, v in changes.items() if k in POOL_FIELDS}
        if "options" in fields:
            fields["options"] = dump_json(fields["options"])
        if fields:
            assignments = ", ".join(f"{k}=?" for k in fields)
            db.execute(f"UPDATE pools SET {assignments} WHERE name=?", (*fields.values(), name))
        return select_pool(db, name)

    @writes
    def delete(self, db, name):
        if not db.execute("DELETE FROM pools WHERE name=?", (name,)).rowcount:
            raise errors.PoolDoesNotExist(name)


def to_flavor(row):
    name, capabilities = row
    return Flavor(name=name, capabilities=json_text.stored(capabilities))


FLAVOR_COLUMNS = "name, CAST(capabilities AS BLOB)"


@implementer(IFlavorController)
class FlavorController:
    def __init__(self, driver):
        self.driver = driver

    @writes
    def create(self, db, name, capabilities=None):
        if db.execute("SELECT 1 FROM flavors WHERE name=?", (name,)).fetchone():
            raise errors.FlavorExists(name)
        capabilities = dump_json(capabilities or {})
        db.execute("INSERT INTO flavors (name, capabilities) VALUES (?,?)",
                   (name, capabilities))
        return to_flavor((name, capabilities))

    @deferred
    def get(self, name):
        row = self.driver.read().execute(f"SELECT {FLAVOR_COLUMNS} FROM flavors WHERE name=?",
                                         (name,)).fetchone()
        if row is None:
            raise errors.FlavorDoesNotExist(name)
        return to_flavor(row)

    @deferred
    def list(self, marker=None, limit=10):
        rows = self.driver.read().execute(
            f"SELECT {FLAVOR_COLUMNS} FROM flavors WHERE name>? ORDER BY name LIMIT ?",
            (marker or "", limit)).fetchall()
        return [to_flavor(row) for row in rows]

    @writes
    def update(self, db, name, capabilities):
        capabilities = dump_json(capabilities)
        if not db.execute("UPDATE flavors SET capabilities=? WHERE name=?",
                          (capabilities, name)).rowcount:
            raise errors.FlavorDoesNotExist(name)
        return to_flavor((name, capabilities))

    @writes
    def delete(self, db, name):
        db.execute("UPDATE pools SET flavor=NULL WHERE flavor=?", (name,))
        db.execute("DELETE FROM flavors WHERE name=?", (name,))


@implementer(ICatalogController)
class CatalogController:
    def __init__(self, driver):
        self.driver = driver

    @deferred
    def lookup(self, project, queue):
        row = self.driver.read().execute("SELECT pool FROM catalog WHERE project=? AND queue=?",
                                         (project or "", queue)).fetchone()
        return None if row is None else row[0]

    @writes
    def insert(self, db, project, queue, pool):
        # The write lock makes the insert and the read one step: what is
        # read is this pool or the entry of whoever inserted first.
        key = (project or "", queue)
        db.execute("INSERT OR IGNORE INTO catalog (project, queue, pool) VALUES (?,?,?)",
                   (*key, pool))
        return db.execute("SELECT pool FROM catalog WHERE project=? AND queue=?",
                          key).fetchone()[0]

    @deferred
    def entries(self, pool, marker=None, limit=100):
        sql, args = "SELECT project, queue FROM catalog WHERE pool=?", [pool]
        if marker is not None:
            sql += " AND (project, queue) > (?, ?)"
            args += [marker[0] or "", marker[1]]
        rows = self.driver.read().execute(sql + " ORDER BY project, queue LIMIT ?",
                                          (*args, limit)).fetchall()
        return [(project or None, queue) for project, queue in rows]

    @writes
    def remove_pool(self, db, pool):
        return db.execute("DELETE FROM catalog WHERE pool=?", (pool,)).rowcount
