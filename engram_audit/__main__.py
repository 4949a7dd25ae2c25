from engram_audit.cli import main

main()
