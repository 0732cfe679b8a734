from bookrec_etl.cli import main

main()
