from bookrec_etl.cli import main

main(prog_name="bookrec-etl")
