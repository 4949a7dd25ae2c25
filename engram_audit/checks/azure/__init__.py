"""checks/azure"""
