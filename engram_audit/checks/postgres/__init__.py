"""checks/postgres"""
