"""Italiano: the traveller status page (the kiosk's languages)."""

MESSAGES = {
    'Skip to main content':
        'Vai al contenuto',
    'Language':
        'Lingua',
    'Tax-free form status':
        'Stato del modulo tax-free',
    'Export deadline':
        "Termine per l'esportazione",
    'Form number':
        'Numero del modulo',
    'Next step':
        'Prossimo passo',
    'Check another form':
        'Controlla un altro modulo',
    'Check your tax-free form':
        'Controlla il tuo modulo tax-free',
    'Enter the form number printed next to the QR code and your last name as in your passport.':
        'Inserisci il numero stampato accanto al codice QR e il cognome come nel passaporto.',
    '10 letters and digits, for example NL 7K3Q W9XD':
        '10 lettere e cifre, per esempio NL 7K3Q W9XD',
    'Last name':
        'Cognome',
    'Show status':
        'Mostra stato',
    'Validate your form at your last EU airport or port, before you check in your luggage.':
        "Fai convalidare il modulo nel tuo ultimo aeroporto o porto dell'UE, prima di imbarcare il bagaglio.",
    'Not validated yet':
        'Non ancora convalidato',
    'Customs check needed':
        'Controllo doganale necessario',
    'Go to the customs desk with your goods, your passport and this form, before you check in your luggage.':
        'Recati al banco della dogana con la merce, il passaporto e questo modulo, prima di imbarcare il bagaglio.',
    'Export validated':
        'Esportazione convalidata',
    'Export validated for part of your goods':
        'Esportazione convalidata per una parte della merce',
    'Your refund will be paid by {payer}.':
        'Il rimborso sarà pagato da {payer}.',
    'Refund paid':
        'Rimborso pagato',
    'Nothing more to do. Have a good trip!':
        'Non devi fare altro. Buon viaggio!',
    'Export refused by customs':
        'Esportazione rifiutata dalla dogana',
    'This form cannot be validated any more. Ask the shop if you have questions.':
        'Questo modulo non può più essere convalidato. Per domande rivolgiti al negozio.',
    'Form cancelled by the shop':
        'Modulo annullato dal negozio',
    'This form cannot be used. Ask the shop if you have questions.':
        'Questo modulo non può essere usato. Per domande rivolgiti al negozio.',
    'Export deadline passed':
        "Termine per l'esportazione scaduto",
    'This form can no longer be validated.':
        'Questo modulo non può più essere convalidato.',
    'Fill this in.':
        'Compila questo campo.',
    'This is not a valid form number. Check it on your form.':
        'Questo non è un numero di modulo valido. Controllalo sul modulo.',
    'Too many attempts. Wait a minute and try again.':
        'Troppi tentativi. Attendi un minuto e riprova.',
    'We found no form with this number and last name.':
        'Non abbiamo trovato nessun modulo con questo numero e cognome.',
    'This page was open for a long time. Please send it again.':
        'Questa pagina è rimasta aperta a lungo. Inviala di nuovo.',
    'Go to the start page':
        'Vai alla pagina iniziale',
}
