"""
Using multiple database connections.

The models that bind themselves to a database arrive with Meta.db_connection;
until then this app only exercises the connection handler.
"""
